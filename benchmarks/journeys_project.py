"""The project, driven through its public contract: `worker.py` as a subprocess on a scratch
SQLite database and file outbox, bulk starts with `starter.py start --from-csv`, the milestone
signals, the `complete_milestone` update and the `status` query (names from
workflows/contract.py), and the histories of the runs."""

from __future__ import annotations

import asyncio
import os
import random
import time
from functools import partial
from pathlib import Path
from typing import Any

from faults_journeys import MILESTONES, Journeys
from faults_stack import ROOT, StackError, WorkerSlot
from journey_cost import COLUMNS, cost, run, starter, write_deal
from journeys_measure import (
    CpuMeter,
    latencies_ms,
    percentile,
    rate,
    rss_bytes,
    start_close_times,
    threads_cpu,
    wait_quiet,
    wait_visible,
)
from journeys_wave import (
    WAVE_PLAYBOOK,
    entered_at,
    lateness,
    lead_for,
    summary,
    wait_for_wave,
    write_wave_playbook,
)
from runs import warn
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from models.journey import CompleteMilestone, Milestone, MilestoneSignal, Stage
from models.playbook import load_playbook
from workflows.contract import ONBOARDING_WORKFLOW, Queries, Updates, onboarding_id

SETTLE_SECONDS = 1800.0
STAGE_SECONDS = 300.0
BEFORE_WAIT = 60.0  # for the few journeys of the other touch models
ONBOARDINGS = f'WorkflowType = "{ONBOARDING_WORKFLOW}"'
SIGNAL_OF = {spelled: name for name, spelled, _ in MILESTONES}
BY = {spelled: by for _, spelled, by in MILESTONES}
TOUCH_MODELS = ["high", "low", "tech", "community"]


def project_env(address: str, folder: Path) -> dict[str, str]:
    """The worker's and the CLI's environment: this run's server, a scratch database and
    outbox, no metrics port, and no encryption (a developer's .data key is not picked up)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "SMTP_", "ENCRYPTION_"))
    }
    env.update(
        TEMPORAL_ADDRESS=address,
        DATABASE_URL=f"sqlite:///{folder / 'app.db'}",
        OUTBOX_DIR=str(folder / "outbox"),
        ENCRYPTION_KEYS="",
        ENCRYPTION_KEYS_FILE=str(folder / "no-encryption-keys"),
        CHAT_URLS="[]",
        METRICS_PORT="0",
        COLUMNS="200",
        PLAYBOOK_DIR=str(folder / "playbooks"),  # journeys_wave.copy_playbooks
    )
    return env


async def start_worker(env: dict[str, str], folder: Path) -> WorkerSlot:
    code, _, err = await run(env, "-m", "alembic", "upgrade", "head")
    if code != 0:
        raise StackError(f"alembic upgrade head exited {code}: {err.strip()}")
    worker = WorkerSlot("worker", folder, env)
    await worker.start()
    return worker


def pid_of(worker: WorkerSlot) -> int:
    assert worker.popen is not None
    return worker.popen.pid


def first_mails(outbox: Path, prefix: str) -> int:
    """How many onboardings of the batch have sent their first mail (the outbox names each
    .eml file by its key, `onboarding-ACCOUNT:depart:what-to-expect`)."""
    try:
        return sum(1 for _ in outbox.glob(f"onboarding-{prefix}*_depart_what-to-expect.eml"))
    except OSError:
        return 0


class Project:
    def __init__(
        self, client: Client, env: dict[str, str], folder: Path, worker: WorkerSlot, server: int
    ) -> None:
        self.client = client
        self.env = env
        self.folder = folder
        self.worker = worker
        self.meter = CpuMeter({"worker": pid_of(worker), "server": server})

    def batch(self, prefix: str, count: int) -> Journeys:
        """Low-touch deals on the standard playbook (the fault run's CSV), `prefix-00001`..."""
        folder = self.folder / prefix
        folder.mkdir(exist_ok=True)
        journeys = Journeys(count, random.Random(0), folder, self.env, self.env["TEMPORAL_ADDRESS"])
        journeys.accounts = [f"{prefix}-{n:05d}" for n in range(1, count + 1)]
        return journeys

    async def journeys(self, count: int, concurrency: int) -> dict[str, Any]:
        """`count` low-touch journeys started at once and walked to `completed` by the four
        milestone signals, each sent as soon as its onboarding exists (a milestone sent early
        applies when its stage is reached)."""
        batch = self.batch("walk", count)
        self.meter.start()
        threads = threads_cpu(pid_of(self.worker))
        await batch.start_all()
        gate = asyncio.Semaphore(concurrency)

        async def walk(account: str) -> None:
            handle = self.client.get_workflow_handle(onboarding_id(account))
            for name, _, by in MILESTONES:
                async with gate:
                    await handle.signal(name, MilestoneSignal(by=by, note="benchmark"))

        await asyncio.gather(*map(walk, batch.accounts))
        query = f'{ONBOARDINGS} AND ExecutionStatus = "Completed"'
        await wait_visible(self.client, query, count, SETTLE_SECONDS)
        await wait_quiet(pid_of(self.worker))  # the everboardings they started, their mails
        used = self.meter.used()
        after = threads_cpu(pid_of(self.worker))
        found: dict[str, Any] = {
            "cpu_worker_threads_ms": {
                group: round((seconds - threads.get(group, 0.0)) * 1000 / count)
                for group, seconds in after.items()
            },
            "throughput_per_s": rate(count, *await start_close_times(self.client, query)),
            "cpu_worker_ms": used["worker"] * 1000 / count,
            "cpu_server_ms": used["server"] * 1000 / count,
        }
        # The batch's journeys get their milestones all at once, so fewer workflow tasks.
        found["history_at_once"] = await self.history(onboarding_id(batch.accounts[0]))
        return found

    async def history(self, workflow_id: str) -> dict[str, int]:
        journey = await cost(self.client, workflow_id)
        return {heading: journey.figure(event_type) for heading, event_type in COLUMNS[:3]}

    async def touch_models(self) -> dict[str, dict[str, int]]:
        """One journey per touch model (journey_cost's example deals), walked as a CSM would:
        each milestone its playbook does not automate (and not `contract-signed` for a deal
        that comes signed) reported once the `status` query shows its stage; then each
        history, counted as journey_cost does."""
        playbook = load_playbook(ROOT / "playbooks", "standard")
        folder = self.folder / "touch-models"
        folder.mkdir(exist_ok=True)

        async def walk(touch_model: str) -> str:
            account = f"touch-{touch_model}"
            deal, signed = write_deal(folder, touch_model, account)
            await starter(self.env, "start", "--from-file", str(deal))
            plan = playbook.resolve("standard", touch_model)
            handle = self.client.get_workflow_handle(onboarding_id(account))
            for milestone in Milestone:
                if plan.stage(milestone.stage).automated:
                    continue
                if milestone is Milestone.CONTRACT_SIGNED and signed:
                    continue
                await self.wait_for_stage(handle, milestone.stage)
                signal = MilestoneSignal(by=BY[milestone.value], note="benchmark")
                await handle.signal(SIGNAL_OF[milestone.value], signal)
            await self.wait_for_stage(handle, Stage.COMPLETED)
            await handle.result()  # closed: its history is whole
            return handle.id

        ids = await asyncio.gather(*map(walk, TOUCH_MODELS))
        return {tm: await self.history(i) for tm, i in zip(TOUCH_MODELS, ids, strict=True)}

    async def wait_for_stage(self, handle: WorkflowHandle[Any, Any], stage: Stage) -> None:
        deadline = time.monotonic() + STAGE_SECONDS
        now = "(not started)"
        while now != stage.value:
            if time.monotonic() > deadline:
                raise StackError(f"{handle.id} in {now}, not {stage}, after {STAGE_SECONDS:.0f} s")
            await asyncio.sleep(0.1)
            try:
                now = (await handle.query(Queries.STATUS))["stage"]
            except RPCError:
                continue  # just started: its first workflow task may still be due
            except WorkflowQueryFailedError:
                continue
            if now == Stage.COMPLETED.value and stage is not Stage.COMPLETED:
                raise StackError(f"{handle.id} completed without waiting for {stage}")

    async def open_batch(self, count: int, sample: int) -> dict[str, Any]:
        """Bulk-start `count` onboardings, wait until each waits in its first stage with its
        first mail sent, then measure the worker's RSS and, over `sample` sequential calls,
        the `status` query and the `complete_milestone` update."""
        batch = self.batch("open", count)
        outbox = Path(self.env["OUTBOX_DIR"])
        worker = pid_of(self.worker)
        rss_before = rss_bytes(worker)
        self.meter.start()
        t0 = time.monotonic()
        started = asyncio.create_task(batch.start_all())
        deadline = t0 + SETTLE_SECONDS
        while first_mails(outbox, "open-") < count or not started.done():
            if started.done() and started.exception():
                break
            if time.monotonic() > deadline:
                raise StackError(f"{first_mails(outbox, 'open-')} of {count} first mails sent")
            await asyncio.sleep(0.25)
        await started
        found: dict[str, Any] = {"settle_s": time.monotonic() - t0}
        quiet = await wait_quiet(worker)
        found["quiet_s"] = quiet - t0
        used = self.meter.used()
        found["open_cpu_ms"] = (used["worker"] + used["server"]) * 1000 / count
        query = f'{ONBOARDINGS} AND WorkflowId STARTS_WITH "onboarding-open-"'
        await wait_visible(self.client, query, count)
        starts, _ = await start_close_times(self.client, query)
        found["starts_per_s"] = rate(count, starts, starts)
        found["rss_mib"] = rss_bytes(worker) / 2**20
        found["rss_per_open_kib"] = (rss_bytes(worker) - rss_before) / 1024 / count

        rng = random.Random(12)
        handles = [
            self.client.get_workflow_handle(onboarding_id(a))
            for a in rng.sample(batch.accounts, min(sample, count))
        ]
        failed: dict[str, list[str]] = {"query": [], "update": []}
        queries = await latencies_ms(
            (partial(h.query, Queries.STATUS) for h in handles), failed["query"]
        )
        signed = CompleteMilestone(
            milestone=Milestone.CONTRACT_SIGNED, by=BY["contract-signed"], note="benchmark"
        )
        updates = await latencies_ms(
            (partial(h.execute_update, Updates.COMPLETE_MILESTONE, signed) for h in handles),
            failed["update"],
        )
        for name, values in (("query", queries), ("update", updates)):
            found[f"{name}_p50_ms"] = percentile(values, 50)
            found[f"{name}_p99_ms"] = percentile(values, 99)
            found[f"{name}_failed"] = len(failed[name])
            for error in sorted(set(failed[name])):
                warn(f"{name} failed: {error}")
        found["sample"] = len(handles)
        return found

    async def wave(self, count: int, settle_per_s: float) -> dict[str, Any]:
        """`count` onboardings whose depart reminders all fall due together (journeys_wave),
        while the open batch is still held: how late each reminder was sent."""
        lead = lead_for(count, settle_per_s)
        write_wave_playbook(Path(self.env["PLAYBOOK_DIR"]), lead)
        batch = self.batch("wave", count)
        batch.playbook = WAVE_PLAYBOOK
        t0 = time.monotonic()
        await batch.start_all()
        outbox = Path(self.env["OUTBOX_DIR"])
        sent = await wait_for_wave(outbox, "wave", count, t0 + lead + BEFORE_WAIT + SETTLE_SECONDS)
        entered = await entered_at(self.client, batch.accounts)
        due = [e.timestamp() for e in entered.values()]
        return summary(lateness(sent, entered, lead), lead, max(due) - min(due))
