"""`replay-check`: the gate before a deploy. Replays the cluster's onboardings and
everboardings (running, or closed lately) against the workflow code on disk and names every
run that code would break, with the first command where it parts from the history.

Which runs, when there are too many, is decided in service/replay.py. The replay uses the
worker's own workflows, sandbox and data converter (the encryption keys of the settings), so
what passes here is what the new workers will run."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from cli.app import app, connect, err, error_line, note_line, out, parse_amount, run
from workflows.contract import EVERBOARDING_WORKFLOW, ONBOARDING_WORKFLOW

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from temporalio.client import Client, WorkflowExecution, WorkflowHistory

    from service.replay import Run, Verdict

# Below this many runs every one is replayed (about 50 ms each on 2 cores, plus fetching: a
# gate of half a minute); above it, a sample of this many.
SAMPLE = 500
# A run continues as new long before this (an onboarding at 2,000 events, README: *One state,
# bounded history*); one past it has escaped its budget, and alone would take seconds to
# replay. It is named and left out, and its history is not read past the limit.
MAX_EVENTS = 10_000
FETCHES = 8  # histories read at once: the cluster's frontend serves the workers meanwhile


@app.command("replay-check")
def replay_check(
    closed_within: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            help="Also replay runs closed this recently (7d, 36h, 2w): a status query on a "
            "closed run replays it on the new workers, and the recently closed runs took the "
            "paths (completion, cancel, continue-as-new) the running ones are about to take.",
        ),
    ] = "7d",
    sample: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Replay every run when there are at most N, else N of them: the oldest and "
            "the newest of each type and stage, the rest drawn at random with --seed.",
        ),
    ] = SAMPLE,
    seed: Annotated[
        int,
        typer.Option(
            help="The sample's draw: the same runs and seed give the same sample, so a "
            "failed check fails again when rerun."
        ),
    ] = 1,
    max_events: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Skip (and name) a run whose history is longer than this.",
        ),
    ] = MAX_EVENTS,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Replay running and recently closed onboardings and everboardings against the workflow
    code on disk, before deploying it. Exit 1 naming every run the code would break (workflow
    id, run id, type) and the first command where it departs from the run's history."""
    from service.replay import Verdict, choose

    window = parse_amount(closed_within)
    if window is None or not window:
        raise typer.BadParameter(
            f"{closed_within!r} is not a duration like 7d, 36h or 2w", param_hint="--closed-within"
        )
    verdict = Verdict(found=Counter(), chosen=0, seed=seed)

    async def go() -> None:
        client = await connect()
        runs = await _list_runs(client, datetime.now(UTC) - window)
        verdict.found.update(r.workflow_type for r in runs)
        chosen = choose(runs, sample, seed) if runs else []
        verdict.chosen = len(chosen)
        if not chosen:
            return
        if not as_json:
            out.print(_found_line(verdict, closed_within), highlight=False, soft_wrap=True)
        await _replay(client, chosen, max_events, verdict)

    run(go())
    if as_json:
        import json

        out.file.write(json.dumps(verdict.as_json(), indent=2) + "\n")
    else:
        _print(verdict, closed_within)
    if not verdict.passed:
        raise typer.Exit(1)


async def _list_runs(client: Client, since: datetime) -> list[Run]:
    """The onboardings' and everboardings' runs that are running or closed since `since`,
    from visibility (one call per page): each run of a continue-as-new chain is one."""
    query = (
        f"(WorkflowType = '{ONBOARDING_WORKFLOW}' OR WorkflowType = '{EVERBOARDING_WORKFLOW}') "
        f"AND (ExecutionStatus = 'Running' OR CloseTime >= '{since:%Y-%m-%dT%H:%M:%SZ}')"
    )
    return [_run(execution) async for execution in client.list_workflows(query)]


def _run(execution: WorkflowExecution) -> Run:
    from service.onboardings import status_name
    from service.replay import Run
    from workflows.contract import SA_STAGE

    return Run(
        workflow_id=execution.id,
        run_id=execution.run_id,
        workflow_type=execution.workflow_type,
        status=status_name(execution.status),
        started_at=execution.start_time,
        stage=execution.typed_search_attributes.get(SA_STAGE),
    )


async def _replay(client: Client, chosen: list[Run], max_events: int, verdict: Verdict) -> None:
    """Fetch the chosen runs' histories, FETCHES at a time, and replay each as it arrives
    (memory holds a few histories, never all); the verdict records every outcome."""
    from rich.progress import Progress  # heavy, and only this command shows one
    from temporalio.runtime import Runtime, TelemetryConfig
    from temporalio.worker import Replayer
    from temporalio.workflow import NondeterminismError

    from service.replay import Skipped
    from worker import WORKFLOWS, workflow_runner

    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=client.data_converter,  # the settings' keys: the histories are encrypted
        workflow_runner=workflow_runner(),
        # The SDK core logs every failed replay to stdout; the verdict says it in words, and
        # stdout may be --json.
        runtime=Runtime(telemetry=TelemetryConfig(logging=None)),
    )
    arrived: asyncio.Queue[tuple[Run, WorkflowHistory] | None] = asyncio.Queue(1)
    gate = asyncio.Semaphore(FETCHES)

    with Progress(console=err, transient=False) as progress:
        bar = progress.add_task(f"replaying {_runs(len(chosen))}", total=len(chosen))

        async def fetch(run: Run) -> None:
            async with gate:  # held until the replay takes it: FETCHES histories in memory
                history = await _history(client, run, max_events)
                if isinstance(history, str):
                    verdict.skipped.append(Skipped(run, history))
                    progress.advance(bar)
                else:
                    await arrived.put((run, history))

        async def fetch_all() -> None:
            try:
                async with asyncio.TaskGroup() as group:
                    for run in chosen:
                        group.create_task(fetch(run))
            except ExceptionGroup as failed:  # the first is what went wrong; the rest followed
                raise failed.exceptions[0] from None
            finally:
                await arrived.put(None)

        waiting: dict[int, Run] = {}

        async def histories() -> AsyncIterator[WorkflowHistory]:
            while (item := await arrived.get()) is not None:
                waiting[id(item[1])] = item[0]
                yield item[1]

        fetching = asyncio.create_task(fetch_all())
        with _raised_in_workflows() as raised:
            async with replayer.workflow_replay_iterator(histories()) as results:
                async for result in results:
                    run, failure = waiting.pop(id(result.history)), result.replay_failure
                    nondeterministic = isinstance(failure, NondeterminismError)
                    if failure is not None and not nondeterministic:
                        failure = raised.get(run.run_id, failure)  # the reason, not "failed"
                    verdict.record(run, failure, nondeterministic=nondeterministic)
                    progress.advance(bar)
        await fetching  # a failed fetch raises here (run() says what Temporal answered)


class _Raised(logging.Handler):
    """What workflow code (or the codec decoding its input) raised, by run id: the SDK logs it
    with its traceback and hands the replayer only "Encoded failure" or the like."""

    def __init__(self) -> None:
        super().__init__()
        self.by_run: dict[str, Exception] = {}

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, Exception) and isinstance(record.args, tuple) and record.args:
            self.by_run[str(record.args[0])] = error


@contextmanager
def _raised_in_workflows() -> Iterator[dict[str, Exception]]:
    """Collect those exceptions instead of printing tracebacks among the summary."""
    logger = logging.getLogger("temporalio.worker._workflow")
    handler = _Raised()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.by_run
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


async def _history(client: Client, run: Run, max_events: int) -> WorkflowHistory | str:
    """The run's history, or why it is left out: read no further than `max_events`."""
    from temporalio.client import WorkflowHistory
    from temporalio.service import RPCError

    from service.onboardings import is_not_found

    events = []
    handle = client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
    try:
        async for event in handle.fetch_history_events():
            events.append(event)
            if len(events) > max_events:
                return f"its history is longer than {max_events:,} events (--max-events)"
    except RPCError as error:
        if not is_not_found(error):
            raise
        return "gone from Temporal since it was listed (retention)"
    return WorkflowHistory(run.workflow_id, events)


def _found_line(verdict: Verdict, closed_within: str) -> str:
    found = sum(verdict.found.values())
    what = (
        f"replaying a sample of {verdict.chosen} (--sample; seed {verdict.seed})"
        if verdict.sampled
        else "replaying all of them"
    )
    kinds = _by_type(verdict.found)
    return f"{_runs(found)} running or closed within {closed_within} ({kinds}): {what}"


def _print(verdict: Verdict, closed_within: str) -> None:
    from cli.tables import Rows

    if not verdict.found:
        out.print(
            f"no onboardings or everboardings running or closed within {closed_within}: "
            "nothing to replay",
            soft_wrap=True,
        )
        return
    for skipped in verdict.skipped:
        note_line(
            f"not replayed: {skipped.run.workflow_id} (run {skipped.run.run_id}): {skipped.reason}"
        )
    replayed = sum(verdict.replayed.values())
    if not replayed:
        out.print("no run replayed: every one chosen was left out (the notes above say why)")
        return
    if verdict.passed:
        left_out = f" ({len(verdict.skipped)} not replayed, above)" if verdict.skipped else ""
        out.print(
            f"replayed {_by_type(verdict.replayed)}: every one replays on this code{left_out}",
            highlight=False,
            soft_wrap=True,
        )
        return
    table = Rows(
        ("workflow id", "run id", "type", "first divergent command"),
        {"workflow id", "run id", "type"},
        f"runs this code would break ({len(verdict.broken)} of {replayed} replayed)",
    )
    for broken in sorted(verdict.broken, key=lambda b: b.run.key):
        run = broken.run
        table.add(run.workflow_id, run.run_id, run.workflow_type, broken.divergence)
    table.print(out)
    out.print(f"replayed {_by_type(verdict.replayed)}", highlight=False, soft_wrap=True)
    hint = (
        ": version the change with workflow.patched (README: Releases and running onboardings)"
        if any(broken.nondeterministic for broken in verdict.broken)
        else ""
    )
    error_line(f"{len(verdict.broken)} of {_runs(replayed)} would break on this code{hint}")


def _by_type(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {kind} run{'s' if n != 1 else ''}" for kind, n in sorted(counts.items()))


def _runs(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"
