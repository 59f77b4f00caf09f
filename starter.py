"""The command line for the sales system and CSMs. Talks only to Temporal.

    starter.py start --from-file examples/deal-acme.json
    starter.py signal acme contract-signed --by ae-001
    starter.py status acme [--json]
    starter.py list [--json]

Exit codes: 0 done, 1 refused or failed (the message says why), 2 wrong usage.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Coroutine
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from config import Settings, connect_temporal
from models.academy import load_academy
from models.journey import (
    Acknowledge,
    AwareDatetime,
    Cancel,
    CancelReason,
    CompleteMilestone,
    CompleteTask,
    Contact,
    Engagement,
    EngagementKind,
    ExtendDeadline,
    Milestone,
    OnboardingInput,
    OnboardingRequest,
    OnboardingStatus,
    PauseClock,
    ResumeClock,
    RiskLevel,
    SetChampion,
    Stage,
)
from models.playbook import (
    PlaybookError,
    format_validation_error,
    load_playbook,
    parse_duration,
)
from workflows import (
    MEMO_CSM,
    MEMO_ESCALATED,
    MEMO_NEXT_DEADLINE,
    MEMO_RISK,
    MEMO_STAGE,
    SA_CSM,
    SA_ESCALATED,
    SA_OVERDUE,
    SA_PLAN,
    SA_RISK,
    SA_STAGE,
    SA_TOUCH_MODEL,
    TASK_QUEUE,
    onboarding_id,
)
from workflows.onboarding import OnboardingWorkflow

app = typer.Typer(
    help="Customer onboarding: start onboardings, report milestones, see where each account is.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)


# A query needs a worker to answer; say so instead of hanging.
QUERY_TIMEOUT = timedelta(seconds=10)


class Failure(Exception):
    """A refusal or failure the user should read; exit 1."""


class IfExists(StrEnum):
    FAIL = "fail"
    IGNORE = "ignore"


def run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(coro)
    except Failure as failure:
        err.print(f"[red]error:[/red] {failure}", highlight=False)
        raise typer.Exit(1) from None
    except RPCError as error:
        err.print(f"[red]error:[/red] Temporal answered: {error.message}", highlight=False)
        raise typer.Exit(1) from None


async def connect() -> Client:
    try:
        return await connect_temporal()
    except RuntimeError as error:
        address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
        raise Failure(f"cannot reach Temporal at {address} ({error}); is `make run` up?") from None


def _is_not_found(error: RPCError) -> bool:
    return error.status == RPCStatusCode.NOT_FOUND


# --- start ---------------------------------------------------------------------------------


def read_request(path: Path) -> OnboardingRequest:
    try:
        text = path.read_text()
    except OSError as error:
        raise Failure(f"cannot read {path}: {error.strerror}") from None
    try:
        return OnboardingRequest.model_validate_json(text)
    except ValidationError as error:
        raise Failure(f"{path}: {format_validation_error(error)}") from None


@app.command()
def start(
    from_file: Annotated[
        Path, typer.Option("--from-file", help="The deal as JSON (an OnboardingRequest).")
    ],
    if_exists: Annotated[
        IfExists,
        typer.Option(help="When the account is already onboarding: fail, or ignore (exit 0)."),
    ] = IfExists.FAIL,
) -> None:
    """Start an account's onboarding from the sales system's deal document."""

    async def go() -> None:
        request = read_request(from_file)
        settings = Settings()
        try:
            playbook = load_playbook(settings.playbook_dir, request.playbook)
            academy = load_academy(settings.playbook_dir)
        except PlaybookError as error:
            raise Failure(f"{from_file}: {error}") from None
        workflow_input = OnboardingInput(
            request=request,
            playbook=playbook.resolve(request.playbook, request.touch_model),
            path=academy.path_for(request.plan, request.industry, request.use_case),
        )
        client = await connect()
        workflow_id = onboarding_id(request.account_id)
        try:
            await client.start_workflow(
                OnboardingWorkflow.run,
                workflow_input,
                id=workflow_id,
                task_queue=TASK_QUEUE,
                # A completed onboarding is not started again by a retried deal; a cancelled
                # or failed one may be.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(SA_STAGE, Stage.DEPART.value),
                        SearchAttributePair(SA_TOUCH_MODEL, request.touch_model.value),
                        SearchAttributePair(SA_PLAN, request.plan.value),
                    ]
                ),
                static_summary=(
                    f"Onboarding {request.account_id}: {request.plan} plan, "
                    f"{request.touch_model}-touch, playbook {request.playbook}"
                ),
            )
        except RPCError as error:
            if "search attribute" in error.message.lower():
                raise Failure(
                    f"the namespace lacks the onboarding search attributes ({error.message}); "
                    "start the worker once (it registers them) or register them by hand"
                ) from None
            raise
        except WorkflowAlreadyStartedError:
            message = f"account {request.account_id} already has an onboarding ({workflow_id})"
            if if_exists is IfExists.IGNORE:
                out.print(f"{message}; nothing to do")
                return
            raise Failure(message + "; use --if-exists ignore for retries") from None
        out.print(f"started onboarding for {request.account_id}: workflow {workflow_id}")

    run(go())


# --- signal --------------------------------------------------------------------------------


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None

    class At(BaseModel):
        at: AwareDatetime

    try:
        return At(at=value).at  # type: ignore[arg-type]
    except ValidationError as error:
        raise typer.BadParameter(format_validation_error(error).removeprefix("at: ")) from None


@app.command()
def signal(
    account: Annotated[str, typer.Argument(help="The account id (slug), e.g. acme.")],
    milestone: Annotated[Milestone, typer.Argument(help="The milestone reached.")],
    by: Annotated[str, typer.Option(help="Who reports it, e.g. csm-007.")],
    at: Annotated[
        str | None,
        typer.Option(help="When it happened (ISO 8601 with zone); default now."),
    ] = None,
    note: Annotated[str | None, typer.Option(help="A short note for the record.")] = None,
) -> None:
    """Report a milestone; the onboarding accepts it or says why not."""
    when = _parse_at(at)

    async def go() -> None:
        result = await _update(
            account,
            OnboardingWorkflow.complete_milestone,
            CompleteMilestone(milestone=milestone, by=by, at=when, note=note),
        )
        if result.milestone.stage is result.stage:
            out.print(f"accepted: {milestone} recorded for {account}; stage {result.stage} done")
        else:
            out.print(
                f"accepted: {milestone} recorded early for {account} (now in {result.stage}); "
                f"it applies when {milestone.stage} is reached"
            )

    run(go())


async def _update(account: str, update: Any, arg: BaseModel) -> Any:
    """Send a CSM's update; a rejection becomes the validator's reason, exit 1."""
    handle = await _existing(await connect(), account)
    try:
        return await handle.execute_update(update, arg)
    except WorkflowUpdateFailedError as error:
        reason = error.cause.message if error.cause else str(error)  # type: ignore[attr-defined]
        raise Failure(f"rejected: {reason}") from None
    except RPCError as error:
        if _is_not_found(error):
            raise Failure(f"the onboarding of {account} has already ended") from None
        raise


ACCOUNT = Annotated[str, typer.Argument(help="The account id (slug), e.g. acme.")]
WHO = Annotated[str, typer.Option("--by", help="Who does it, e.g. csm-007.")]


@app.command()
def task(
    account: ACCOUNT,
    task_id: Annotated[str, typer.Argument(help="The checklist task, e.g. add-users.")],
    by: WHO,
    done: Annotated[bool, typer.Option("--done", help="Mark the task done.")] = False,
    note: Annotated[str | None, typer.Option(help="A short note for the record.")] = None,
) -> None:
    """Mark a checklist task done (its reminders stop)."""
    if not done:
        raise typer.BadParameter("say --done (the only action on a task so far)")

    async def go() -> None:
        result = await _update(
            account,
            OnboardingWorkflow.complete_task,
            CompleteTask(task_id=task_id, by=by, note=note),
        )
        out.print(f"accepted: task {result.id} of {account} done")

    run(go())


def _parse_extension(value: str) -> tuple[datetime | None, timedelta | None]:
    """`+7d` adds to the deadline (due_at, extend_by); an ISO 8601 time with zone sets it."""
    if value.startswith("+"):
        amount = parse_duration(value[1:])
        if not isinstance(amount, timedelta):
            raise typer.BadParameter(f"{value!r}: use +90s, +30m, +36h, +7d or +2w")
        return None, amount
    return _parse_at(value), None


@app.command()
def extend(
    account: ACCOUNT,
    to: Annotated[
        str, typer.Option("--by", help="+7d to add to the deadline, or a new due time (ISO 8601).")
    ],
    reason: Annotated[str, typer.Option(help="Why, for the record.")],
    task_id: Annotated[
        str | None, typer.Option("--task", help="The task; without it, the stage's deadline.")
    ] = None,
    who: Annotated[str, typer.Option("--who", help="Who moves it.")] = getpass.getuser(),
) -> None:
    """Move a deadline; its reminders follow."""
    due_at, extend_by = _parse_extension(to)
    try:
        request = ExtendDeadline(
            task_id=task_id,
            due_at=due_at,
            extend_by=extend_by,
            reason=reason,
            by=who,
        )
    except ValidationError as error:
        raise typer.BadParameter(format_validation_error(error)) from None

    async def go() -> None:
        result = await _update(account, OnboardingWorkflow.extend_deadline, request)
        out.print(f"accepted: {task_id or 'the stage'} of {account} now due {_when(result.due_at)}")

    run(go())


@app.command()
def pause(
    account: ACCOUNT,
    by: WHO,
    reason: Annotated[str, typer.Option(help="What the onboarding waits on.")],
) -> None:
    """Stop the clock: no reminders, and paused time does not count against deadlines."""

    async def go() -> None:
        await _update(account, OnboardingWorkflow.pause, PauseClock(by=by, reason=reason))
        out.print(f"accepted: the clock of {account} is paused")

    run(go())


@app.command()
def resume(account: ACCOUNT, by: WHO) -> None:
    """Restart the clock; every open deadline moves by the time paused."""

    async def go() -> None:
        result = await _update(account, OnboardingWorkflow.resume, ResumeClock(by=by))
        out.print(
            f"accepted: the clock of {account} runs again; next deadline "
            f"{_when(result.next_deadline)}"
        )

    run(go())


@app.command()
def cancel(
    account: ACCOUNT,
    reason: Annotated[CancelReason, typer.Option(help="Why the customer lets go.")],
    note: Annotated[str | None, typer.Option(help="What they said.")] = None,
    by: Annotated[str, typer.Option(help="Who records it.")] = getpass.getuser(),
) -> None:
    """End the onboarding: thank the customer, send the exit survey, start no everboarding."""

    async def go() -> None:
        await _update(account, OnboardingWorkflow.cancel, Cancel(reason=reason, note=note, by=by))
        out.print(f"accepted: the onboarding of {account} is cancelled ({reason})")

    run(go())


@app.command()
def engagement(
    account: ACCOUNT,
    kind: Annotated[EngagementKind, typer.Option(help="What the customer did.")],
    value: Annotated[str | None, typer.Option(help="e.g. the course id or NPS score.")] = None,
) -> None:
    """Report customer engagement (as the product does by signal)."""

    async def go() -> None:
        handle = await _existing(await connect(), account)
        await handle.signal(OnboardingWorkflow.engagement, Engagement(kind=kind, value=value))
        out.print(f"sent: {kind} for {account}")

    run(go())


@app.command()
def ack(
    account: ACCOUNT,
    by: WHO,
    note: Annotated[str | None, typer.Option(help="What was done.")] = None,
) -> None:
    """Acknowledge the open escalation, so it climbs no further."""

    async def go() -> None:
        result = await _update(
            account, OnboardingWorkflow.acknowledge_escalation, Acknowledge(by=by, note=note)
        )
        out.print(f"accepted: escalation #{result.number} of {account} acknowledged")

    run(go())


@app.command()
def champion(
    account: ACCOUNT,
    name: Annotated[str, typer.Option(help="The new champion's name.")],
    email: Annotated[str, typer.Option(help="The new champion's email.")],
    by: WHO,
    title: Annotated[str | None, typer.Option(help="Their role.")] = None,
) -> None:
    """Name the customer's new champion; reminders go to them from now on."""
    try:
        contact = Contact(name=name, email=email, title=title)
    except ValidationError as error:
        raise typer.BadParameter(format_validation_error(error)) from None

    async def go() -> None:
        await _update(
            account, OnboardingWorkflow.set_champion, SetChampion(champion=contact, by=by)
        )
        out.print(f"accepted: {name} is the champion of {account}")

    run(go())


async def _existing(client: Client, account: str) -> WorkflowHandle[Any, Any]:
    handle = client.get_workflow_handle(onboarding_id(account))
    try:
        await handle.describe()
    except RPCError as error:
        if _is_not_found(error):
            raise Failure(f"no onboarding for account {account}") from None
        raise
    return handle


# --- status --------------------------------------------------------------------------------


class StatusReport(OnboardingStatus):
    """The status query's answer plus what only the server knows: the runs' states."""

    workflow_status: str
    everboarding_status: str | None


async def _run_status(client: Client, workflow_id: str | None) -> str | None:
    if workflow_id is None:
        return None
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if _is_not_found(error):
            return None
        raise
    return _status_name(description.status)


def _status_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


@app.command()
def status(
    account: Annotated[str, typer.Argument(help="The account id (slug), e.g. acme.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Where an account's onboarding is: stage, dates, CSM, next deadline, history."""

    async def go() -> None:
        client = await connect()
        handle = await _existing(client, account)
        try:
            onboarding = await handle.query(OnboardingWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as error:
            # The client's own deadline surfaces as CANCELLED, the server's as DEADLINE_EXCEEDED.
            if error.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
                raise Failure(
                    f"no worker answered within {QUERY_TIMEOUT.seconds} s; is the worker "
                    "running (`make run`)? `starter.py list` works without one"
                ) from None
            raise
        report = StatusReport(
            **onboarding.model_dump(),
            workflow_status=_status_name((await handle.describe()).status),
            everboarding_status=await _run_status(client, onboarding.everboarding_workflow_id),
        )
        if as_json:
            out.print_json(report.model_dump_json())
            return
        _print_status(report)

    run(go())


def _print_status(report: StatusReport) -> None:
    out.print(
        f"[bold]{report.account_name}[/bold] ({report.account_id}) · {report.plan} plan · "
        f"{report.touch_model}-touch · playbook {report.playbook} · workflow "
        f"{report.workflow_status}",
        highlight=False,
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_row("Stage", f"{report.stage} since {_when(report.stage_entered_at)}")
    facts.add_row("Next deadline", _when(report.next_deadline))
    facts.add_row("CSM", report.csm_id or "not assigned yet")
    facts.add_row("First value", _when(report.first_value_at))
    facts.add_row("Risk", f"{report.risk.level}" + "".join(f"; {r}" for r in report.risk.reasons))
    for e in report.escalations:
        state = (
            f"acknowledged by {e.acknowledged_by} {_when(e.acknowledged_at)} {e.note or ''}"
            if e.acknowledged_at
            else "[red]open[/red]"
        )
        facts.add_row(
            f"Escalation #{e.number}",
            f"{_when(e.raised_at)}, told {', '.join(e.notified)}: {state}",
        )
    if report.overdue:
        facts.add_row("Overdue", "[red]" + ", ".join(report.overdue) + "[/red]")
    if report.paused_since:
        facts.add_row("Clock", f"paused since {_when(report.paused_since)}")
    if report.cancellation:
        c = report.cancellation
        facts.add_row(
            "Cancelled", f"{_when(c.at)} in {c.stage} by {c.by}: {c.reason} {c.note or ''}"
        )
    if report.pending_milestones:
        facts.add_row("Recorded early", ", ".join(report.pending_milestones))
    if report.everboarding_workflow_id:
        facts.add_row(
            "Everboarding", f"{report.everboarding_workflow_id} ({report.everboarding_status})"
        )
    out.print(facts, highlight=False)

    milestones = Table(title="Milestones", title_justify="left")
    for column in ("milestone", "at", "by", "note"):
        milestones.add_column(column)
    for milestone in Milestone:
        record = report.milestones.get(milestone)
        if record:
            milestones.add_row(milestone, _when(record.at), record.by, record.note or "")
        else:
            milestones.add_row(milestone, "-", "", "")
    out.print(milestones)

    if report.tasks:
        tasks = Table(title="Checklist", title_justify="left")
        for column in ("task", "stage", "owner", "due", "done", "reminders"):
            tasks.add_column(column)
        for t in sorted(report.tasks, key=lambda t: t.due_at):
            done = f"{_when(t.done_at)} by {t.done_by}" if t.done_at else "-"
            due = _when(t.due_at) + (f" (+{t.extended_by})" if t.extended_by else "")
            tasks.add_row(t.id, t.stage, t.owner, due, done, str(t.reminders_sent))
        out.print(tasks)

    history = Table(title="Stage history", title_justify="left")
    for column in ("stage", "entered", "exited", "days"):
        history.add_column(column)
    for visit in report.history:
        days = (
            f"{(visit.exited_at - visit.entered_at).total_seconds() / 86400:.1f}"
            if visit.exited_at
            else ""
        )
        history.add_row(visit.stage, _when(visit.entered_at), _when(visit.exited_at), days)
    out.print(history)


# --- list ----------------------------------------------------------------------------------


class OnboardingLine(BaseModel):
    account_id: str
    workflow_status: str
    stage: str
    csm_id: str | None
    next_deadline: datetime | None
    started_at: datetime | None
    risk: str | None = None
    escalated: bool = False


@app.command("list")
def list_onboardings(
    stage: Annotated[Stage | None, typer.Option(help="Only onboardings in this stage.")] = None,
    risk: Annotated[RiskLevel | None, typer.Option(help="Only at this risk level.")] = None,
    csm: Annotated[str | None, typer.Option(help="Only this CSM's onboardings.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue ones.")] = False,
    escalated: Annotated[
        bool, typer.Option("--escalated", help="Only those with an open escalation.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """All onboardings, one line each, newest first (filters use search attributes)."""
    query = ["WorkflowType = 'OnboardingWorkflow'"]
    for key, value in ((SA_STAGE, stage), (SA_RISK, risk), (SA_CSM, csm)):
        if value is not None:
            query.append(f"{key.name} = {json.dumps(str(value))}")
    query += [
        f"{key.name} = true" for key, on in ((SA_OVERDUE, overdue), (SA_ESCALATED, escalated)) if on
    ]

    async def go() -> None:
        client = await connect()
        lines = []
        async for execution in client.list_workflows(" AND ".join(query)):
            # From visibility only (the memo the workflow keeps current): works with no
            # worker running and costs one call per page, not one per onboarding.
            memo = await execution.memo()
            deadline = memo.get(MEMO_NEXT_DEADLINE)
            lines.append(
                OnboardingLine(
                    account_id=execution.id.removeprefix(onboarding_id("")),
                    workflow_status=_status_name(execution.status),
                    stage=memo.get(MEMO_STAGE, "(no worker yet)"),
                    csm_id=memo.get(MEMO_CSM),
                    next_deadline=datetime.fromisoformat(deadline) if deadline else None,
                    started_at=execution.start_time,
                    risk=memo.get(MEMO_RISK),
                    escalated=bool(memo.get(MEMO_ESCALATED)),
                )
            )
        if as_json:
            out.print_json(json.dumps([line.model_dump(mode="json") for line in lines]))
            return
        if not lines:
            out.print("no onboardings yet")
            return
        table = Table()
        for column in ("account", "stage", "risk", "csm", "next deadline", "started", "workflow"):
            table.add_column(column)
        for line in lines:
            table.add_row(
                line.account_id,
                line.stage,
                (line.risk or "-") + (" [red]escalated[/red]" if line.escalated else ""),
                line.csm_id or "-",
                _when(line.next_deadline),
                _when(line.started_at),
                line.workflow_status,
            )
        out.print(table)

    run(go())


def main() -> NoReturn:
    try:
        app()
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    # See worker.py: skip interpreter finalisation (temporalio/sdk-python#300).
    os._exit(status)


if __name__ == "__main__":
    main()
