"""The journeys of the fault-injection run, driven through the public contract: started with
`starter.py start --from-csv`, moved on with the milestone signals (names from
`workflows/contract.py`), read back from the `status` answer and each run's result."""

from __future__ import annotations

import asyncio
import csv
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from faults_stack import ROOT, StackError
from runs import warn
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from infra.settings import connect_temporal, worker_runtime
from models.journey import MilestoneSignal
from workflows.contract import ONBOARDING_WORKFLOW, Queries, Signals, onboarding_id

# Signal name, the milestone as the status answer spells it, who reports it.
MILESTONES = [
    (Signals.CONTRACT_SIGNED, "contract-signed", "ae-001"),
    (Signals.KICKOFF_HELD, "kickoff-held", "csm-007"),
    (Signals.INTEGRATION_DONE, "integration-done", "csm-007"),
    (Signals.REVIEW_PASSED, "review-passed", "csm-007"),
]
SIGNAL_RETRY_SECONDS = 300.0  # a signal is retried across a Temporal restart, then given up
RPC_TIMEOUT = timedelta(seconds=10)
START_SECONDS = 600.0
RUNNING = f'WorkflowType = "{ONBOARDING_WORKFLOW}" AND ExecutionStatus = "Running"'


class Journeys:
    def __init__(
        self, count: int, rng: random.Random, folder: Path, env: dict[str, str], address: str
    ) -> None:
        self.accounts = [f"fault-{n:03d}" for n in range(1, count + 1)]
        self.rng = rng
        self.folder = folder
        self.env = env
        self.address = address
        self.playbook = "standard"
        self.started = 0
        self.sent: dict[tuple[str, str], str] = {}  # (account, milestone) → by
        self.failed: list[str] = []  # signals given up on
        self.rpc_retries = 0
        self._client: Client | None = None

    async def client(self) -> Client:
        if self._client is None:
            # Connect as the CLI does (so the same data converter, and the same codec where
            # one is configured), to this run's server only.
            for name in [n for n in os.environ if n.startswith("TEMPORAL_")]:
                del os.environ[name]
            os.environ["TEMPORAL_ADDRESS"] = self.address
            # The SDK core's own warnings (its retries while Temporal restarts) go through
            # Python logging to stderr, not into the report on stdout.
            self._client = await connect_temporal(worker_runtime(metrics_port=0))
        return self._client

    def write_csv(self) -> Path:
        path = self.folder / "deals.csv"
        plans, industries = ["basic", "premium", "enterprise"], ["logistics", "insurance", "retail"]
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(
                ["account_id", "account_name", "plan", "touch_model", "industry", "use_case"]
                + ["contract_value", "account_executive_id", "account_executive_name"]
                + ["account_executive_email", "champion_name", "champion_email", "goals", "users"]
                + ["playbook"]
            )
            for n, account in enumerate(self.accounts):
                writer.writerow(
                    [account, f"Fault Test {n}", plans[n % 3], "low", industries[n % 3]]
                    + ["fault injection", "10000", "ae-001", "Sara Lindqvist"]
                    + ["sara.lindqvist@example.com", f"Champion {n}"]
                    + [f"champion@{account}.example", "Survive the fault run"]
                    + [f"User {n} <user@{account}.example>", self.playbook]
                )
        return path

    async def start_all(self) -> None:
        """`starter.py start --from-csv`, as the sales system's bulk export would."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "starter.py",
            "start",
            "--from-csv",
            str(self.write_csv()),
            "--concurrency",
            "16",
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), START_SECONDS)
        except TimeoutError:
            process.kill()
            raise StackError(f"starting the onboardings took over {START_SECONDS:.0f} s") from None
        if process.returncode != 0:
            raise StackError(
                f"starter.py start --from-csv exited {process.returncode}: {err.decode()}"
            )
        self.started = int(out.decode().split(" started", 1)[0].split()[-1])
        warn(out.decode().strip())

    async def signal_all(self, t0: float, window: float) -> None:
        """Each journey's milestones in order, at random moments across the window."""
        plan = []
        for account in self.accounts:
            moments = sorted(self.rng.uniform(0, window) for _ in MILESTONES)
            plan += [(at, account, m) for at, m in zip(moments, MILESTONES, strict=True)]
        plan.sort()
        client = await self.client()
        ticker = asyncio.create_task(self._progress(t0, len(plan)))
        try:
            await asyncio.gather(*(self._send(client, t0 + at, a, m) for at, a, m in plan))
        finally:
            ticker.cancel()

    async def _send(
        self, client: Client, when: float, account: str, milestone: tuple[str, str, str]
    ) -> None:
        name, spelled, by = milestone
        await asyncio.sleep(max(0.0, when - time.time()))
        handle = client.get_workflow_handle(onboarding_id(account))
        deadline = time.monotonic() + SIGNAL_RETRY_SECONDS
        while True:
            try:
                await handle.signal(
                    name, MilestoneSignal(by=by, note="fault run"), rpc_timeout=RPC_TIMEOUT
                )
            except RPCError as error:
                # Temporal restarting: the signal may or may not have landed; sending it again
                # is safe (a milestone is recorded once).
                self.rpc_retries += 1
                if time.monotonic() > deadline:
                    self.failed.append(f"{account} {spelled}: {error.message}")
                    return
                await asyncio.sleep(1)
                continue
            self.sent[(account, spelled)] = by
            return

    async def _progress(self, t0: float, total: int) -> None:
        while True:
            await asyncio.sleep(20)
            warn(f"[{time.time() - t0:5.0f} s] {len(self.sent)}/{total} signals sent")

    async def wait_until_ended(self, within: float) -> None:
        """Until no onboarding runs any more (everboardings go on), or `within` seconds."""
        client = await self.client()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                running = (await client.count_workflows(RUNNING)).count
            except RPCError:
                running = -1
            if running == 0:
                return
            warn(f"waiting for {running} onboardings to end")
            await asyncio.sleep(10)
        warn(f"onboardings still running after {within:.0f} s; reporting them as not completed")

    async def _outcome(self, client: Client, account: str) -> dict[str, Any]:
        """The run's final answer (its result), or its `status` while it still runs."""
        handle = client.get_workflow_handle(onboarding_id(account))
        try:
            described = await handle.describe()
            status = described.status
            if status is WorkflowExecutionStatus.COMPLETED:
                final = await handle.result(rpc_timeout=RPC_TIMEOUT)
            else:
                final = await handle.query(Queries.STATUS, rpc_timeout=RPC_TIMEOUT)
        except RPCError as error:
            return {"workflow": "unknown", "error": error.message}
        name = status.name.lower() if status else "unknown"
        closed = described.close_time.timestamp() if described.close_time else None
        return {"workflow": name, "closed": closed, **(final if isinstance(final, dict) else {})}

    async def outcomes(self, t0: float) -> dict[str, Any]:
        client = await self.client()
        gate = asyncio.Semaphore(8)

        async def one(account: str) -> dict[str, Any]:
            async with gate:
                return await self._outcome(client, account)

        finals = dict(
            zip(self.accounts, await asyncio.gather(*map(one, self.accounts)), strict=True)
        )
        not_completed = {
            a: f"{f['workflow']}, stage {f.get('stage', '?')}"
            + (f": {f['error']}" if "error" in f else "")
            for a, f in finals.items()
            if not (f["workflow"] == "completed" and f.get("stage") == "completed")
        }
        applied, lost = 0, []
        for (account, milestone), by in sorted(self.sent.items()):
            record = (finals[account].get("milestones") or {}).get(milestone)
            if record and record.get("by") == by:
                applied += 1
            else:
                lost.append(f"{account} {milestone}")
        # Every incident a journey raised, open or cleared (`incidents` lists the open ones).
        incidents = sum(int(final.get("incidents_raised") or 0) for final in finals.values())
        closed = [f["closed"] for f in finals.values() if f.get("closed")]
        return {
            "completed": len(self.accounts) - len(not_completed),
            # When the last onboarding ended, counted like the faults from the first signal.
            "last_ended_at_seconds": round(max(closed) - t0, 1) if closed else None,
            "not_completed": not_completed,
            "signals": {
                "sent": len(self.sent),
                "applied": applied,
                "lost": lost,
                "failed": self.failed,
                "rpc_retries": self.rpc_retries,
            },
            "incidents": incidents,
        }
