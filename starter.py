"""The command line for the sales system, CSMs and CS leads. Talks to Temporal, and to the
database for the CSM roster (`csm ...`) and the scorecard (`report`).

    starter.py start --from-file examples/deal-acme.json     (or --from-csv deals.csv)
    starter.py signal acme contract-signed --by ae-001
    starter.py status acme [--json]
    starter.py list [--json]
    starter.py csm list
    starter.py report [--from 2026-07-01] [--html report.html] [--json]
    starter.py announce --feature "Audit log" --plans premium,enterprise --summary "..."

Exit codes: 0 done, 1 refused or failed (the message says why), 2 wrong usage.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select
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

from config import Settings, SettingsError, connect_temporal, load_settings
from db import SchemaError, check_schema, make_engine
from models.academy import LearningPath, load_academy
from models.deal_csv import CsvFileError, Deal, RowError, read_deals
from models.everboarding import Churn, FeatureAnnouncement
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
    ReassignCsm,
    ResumeClock,
    RiskLevel,
    SetChampion,
    Stage,
    UsersAdded,
)
from models.playbook import (
    PlaybookError,
    format_validation_error,
    load_playbook,
    parse_duration,
)
from models.tables import Csm
from reports import scorecard
from reports.console import print_scorecard
from reports.html import render as render_html
from roster import (
    RosterEntry,
    RosterError,
    active_loads,
    add_csm,
    queued,
    remove_csm,
    update_csm,
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
    everboarding_id,
    onboarding_id,
)
from workflows.everboarding import EverboardingWorkflow
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


class UsersAction(StrEnum):
    ADD = "add"


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
        Path | None, typer.Option("--from-file", help="The deal as JSON (an OnboardingRequest).")
    ] = None,
    from_csv: Annotated[
        Path | None,
        typer.Option("--from-csv", help="Many deals, one per row (README: bulk start)."),
    ] = None,
    if_exists: Annotated[
        IfExists,
        typer.Option(help="When the account is already onboarding: fail, or ignore (exit 0)."),
    ] = IfExists.FAIL,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="--from-csv: onboardings started at once.")
    ] = 8,
) -> None:
    """Start an account's onboarding from the sales system's deal document, or many from a
    CSV export (already-onboarding accounts are reported, not started twice)."""
    if (from_file is None) == (from_csv is None):
        raise typer.BadParameter("give exactly one of --from-file and --from-csv")
    if from_csv is not None:
        _start_batch(from_csv, concurrency)
        return
    assert from_file is not None

    async def go() -> None:
        request = read_request(from_file)
        try:
            workflow_input = _workflow_input(request, load_settings())
        except PlaybookError as error:
            raise Failure(f"{from_file}: {error}") from None
        client = await connect()
        workflow_id = onboarding_id(request.account_id)
        if not await _start_onboarding(client, workflow_input):
            message = f"account {request.account_id} already has an onboarding ({workflow_id})"
            if if_exists is IfExists.IGNORE:
                out.print(f"{message}; nothing to do")
                return
            raise Failure(message + "; use --if-exists ignore for retries")
        out.print(f"started onboarding for {request.account_id}: workflow {workflow_id}")

    run(go())


def _workflow_input(request: OnboardingRequest, settings: Settings) -> OnboardingInput:
    """The request with its playbook and learning path resolved (PlaybookError if broken)."""
    playbook = load_playbook(settings.playbook_dir, request.playbook)
    academy = load_academy(settings.playbook_dir)
    return OnboardingInput(
        request=request,
        playbook=playbook.resolve(request.playbook, request.touch_model),
        path=academy.path_for(request.plan, request.industry, request.use_case),
    )


async def _start_onboarding(client: Client, workflow_input: OnboardingInput) -> bool:
    """Start the onboarding; False when the account already has one (nothing started)."""
    request = workflow_input.request
    try:
        await client.start_workflow(
            OnboardingWorkflow.run,
            workflow_input,
            id=onboarding_id(request.account_id),
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
            # Fixed at start (the run's current details carry what changes); no emails.
            static_details="\n".join(
                [
                    f"**Account** {request.account_id} ({request.account_name})",
                    f"**Plan** {request.plan} · **Touch model** {request.touch_model}",
                    f"**Industry** {request.industry} · **Use case** {request.use_case}",
                    f"**Playbook** {request.playbook} · **AE** {request.account_executive.id}",
                    "**Contract signed** "
                    + (
                        f"{request.contract_signed_at:%Y-%m-%d}"
                        if request.contract_signed_at
                        else "not yet"
                    ),
                ]
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
        return False
    return True


def _start_batch(path: Path, concurrency: int) -> None:
    """Every valid row is started, at most `concurrency` at once; bad rows and failures are
    listed at the end (row, field, reason) and make the exit code 1, without stopping the
    batch. Re-running the same file starts only what is missing."""
    try:
        deals, errors = read_deals(path)
    except CsvFileError as error:
        raise typer.BadParameter(str(error), param_hint="--from-csv") from None
    settings = load_settings()
    started: list[str] = []
    existing: list[str] = []

    async def go() -> None:
        client = await connect()
        gate = asyncio.Semaphore(concurrency)
        with Progress(console=err, transient=False) as progress:
            bar = progress.add_task(f"starting {len(deals)} onboardings", total=len(deals))

            async def one(deal: Deal) -> None:
                async with gate:
                    try:
                        workflow_input = _workflow_input(deal.request, settings)
                        is_new = await _start_onboarding(client, workflow_input)
                        (started if is_new else existing).append(deal.request.account_id)
                    except PlaybookError as error:
                        errors.append(RowError(deal.row, "playbook", str(error)))
                    except (Failure, RPCError) as error:
                        errors.append(RowError(deal.row, "account_id", str(error)))
                    progress.advance(bar)

            await asyncio.gather(*(one(deal) for deal in deals))

    run(go())
    out.print(
        f"{len(started)} started, {len(existing)} already onboarding (left as they are), "
        f"{len(errors)} rows with errors"
    )
    if existing:
        out.print("already onboarding: " + ", ".join(sorted(existing)))
    if errors:
        table = Table(title=f"rows not started ({path})")
        for column in ("row", "field", "reason"):
            table.add_column(column)
        for e in sorted(errors, key=lambda e: (e.row, e.field)):
            table.add_row(str(e.row), e.field, e.reason)
        err.print(table)
        raise typer.Exit(1)


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
    if kind is EngagementKind.COURSE_COMPLETED:
        _check_course(value)

    async def go() -> None:
        client = await connect()
        signal = Engagement(kind=kind, value=value)
        handle = await _existing(client, account)
        if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
            await handle.signal(OnboardingWorkflow.engagement, signal)
            out.print(f"sent: {kind} for {account}")
            return
        # Onboarding over: progress and activity count for the everboarding.
        lives_on = await _running_everboarding(client, account)
        await lives_on.signal(EverboardingWorkflow.engagement, signal)
        out.print(f"sent: {kind} for {account} (everboarding)")

    run(go())


def _check_course(value: str | None) -> None:
    """Course progress must name a course (or course/module) of the academy catalogue: a
    typo would otherwise be ignored by the workflow without anyone noticing."""
    if not value:
        raise typer.BadParameter("course_completed needs --value COURSE or COURSE/MODULE")
    try:
        catalogue = load_academy(load_settings().playbook_dir).courses
    except PlaybookError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(1) from None
    if LearningPath(courses=catalogue).unknown(value):
        known = ", ".join(course.id for course in catalogue)
        raise typer.BadParameter(f"{value!r} is not in the academy catalogue (courses: {known})")


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


@app.command()
def users(
    account: ACCOUNT,
    action: Annotated[UsersAction, typer.Argument(help="add")],
    addresses: Annotated[
        list[str], typer.Argument(help='Emails, or "Name <email>", of the new users.')
    ],
    by: Annotated[str, typer.Option(help="Who adds them.")] = getpass.getuser(),
) -> None:
    """Give new users academy access (now, or at kickoff if it has not happened yet)."""
    people = [_contact(address) for address in addresses]

    async def go() -> None:
        handle = await _existing(await connect(), account)
        try:
            await handle.signal(OnboardingWorkflow.users_added, UsersAdded(users=people, by=by))
        except RPCError as error:
            if _is_not_found(error):
                raise Failure(f"the onboarding of {account} has already ended") from None
            raise
        out.print(
            f"sent: {len(people)} user(s) for {account}; each gets academy access "
            "(at kickoff if it is still ahead)"
        )

    run(go())


def _contact(address: str) -> Contact:
    name, email = parseaddr(address)
    try:
        return Contact(name=name or email.split("@")[0], email=email or address)
    except ValidationError as error:
        raise typer.BadParameter(f"{address!r}: {format_validation_error(error)}") from None


@app.command()
def reassign(
    account: ACCOUNT,
    to: Annotated[str, typer.Option("--to", help="The CSM who takes over, e.g. csm-009.")],
    reason: Annotated[str, typer.Option(help="Why, for the record and both CSMs.")],
    by: Annotated[str, typer.Option(help="Who decides.")] = getpass.getuser(),
    over_capacity: Annotated[
        bool, typer.Option("--over-capacity", help="Assign even if they are at capacity.")
    ] = False,
) -> None:
    """Move an onboarding (open tasks, escalations, reminders) to another CSM; both are told."""

    async def go() -> None:
        result = await _update(
            account,
            OnboardingWorkflow.reassign_csm,
            ReassignCsm(to=to, reason=reason, by=by, over_capacity=over_capacity),
        )
        out.print(f"accepted: {account} is now with {result.id} ({result.name}); both were told")

    run(go())


@app.command()
def announce(
    feature: Annotated[str, typer.Option(help='The feature\'s name, e.g. "Audit log".')],
    plans: Annotated[str, typer.Option(help="The plans that have it, e.g. premium,enterprise.")],
    summary: Annotated[str, typer.Option(help="One sentence for the customers' digest.")],
    feature_id: Annotated[
        str | None, typer.Option("--id", help="Stable id (default: from the name).")
    ] = None,
) -> None:
    """Tell every running everboarding on these plans; their next digest carries it.

    Safe to repeat: each everboarding takes an announcement id once."""
    try:
        announcement = FeatureAnnouncement(
            id=feature_id or _slug(feature),
            name=feature,
            summary=summary,
            plans=[part.strip() for part in plans.split(",") if part.strip()],
        )
    except ValidationError as error:
        raise typer.BadParameter(format_validation_error(error)) from None

    async def go() -> None:
        client = await connect()
        plan_list = ", ".join(json.dumps(str(plan)) for plan in announcement.plans)
        query = (
            "WorkflowType = 'EverboardingWorkflow' AND ExecutionStatus = 'Running' "
            f"AND {SA_PLAN.name} IN ({plan_list})"
        )
        told = []
        async for execution in client.list_workflows(query):
            handle = client.get_workflow_handle(execution.id)
            await handle.signal(EverboardingWorkflow.announce_feature, announcement)
            told.append(execution.id.removeprefix(everboarding_id("")))
        if not told:
            out.print(f"no running everboarding on {', '.join(announcement.plans)}; nothing sent")
            return
        out.print(
            f"announced {announcement.name!r} ({announcement.id}) to {len(told)} "
            f"everboarding(s): {', '.join(sorted(told))}"
        )

    run(go())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63]


@app.command()
def churn(
    account: ACCOUNT,
    reason: Annotated[CancelReason, typer.Option(help="Why the customer left.")],
    note: Annotated[str | None, typer.Option(help="What they said.")] = None,
    by: Annotated[str, typer.Option(help="Who records it.")] = getpass.getuser(),
) -> None:
    """The customer has left: end their everboarding and record the churn (retention)."""

    async def go() -> None:
        client = await connect()
        handle = await _running_everboarding(client, account)
        await handle.signal(
            EverboardingWorkflow.customer_churned, Churn(reason=reason, note=note, by=by)
        )
        out.print(f"sent: {account} churned ({reason}); the everboarding ends")

    run(go())


async def _running_everboarding(client: Client, account: str) -> WorkflowHandle[Any, Any]:
    handle = client.get_workflow_handle(everboarding_id(account))
    try:
        if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
            return handle
    except RPCError as error:
        if not _is_not_found(error):
            raise
    try:
        onboarding = await client.get_workflow_handle(onboarding_id(account)).describe()
    except RPCError as error:
        if _is_not_found(error):
            raise Failure(f"no onboarding for account {account}") from None
        raise
    if onboarding.status is WorkflowExecutionStatus.RUNNING:
        raise Failure(
            f"{account} is still onboarding (no everboarding yet); "
            "use `starter.py cancel` to end an onboarding"
        )
    raise Failure(f"{account} has no running everboarding")


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
    facts.add_row(
        "CSM",
        "[yellow]in the pooled queue (no CSM has capacity)[/yellow]"
        if report.csm_pooled
        else report.csm_id or "not assigned yet",
    )
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

    if report.learning:
        finished = sum(1 for c in report.learning if c.done_at)
        courses = Table(
            title=f"Learning path ({finished}/{len(report.learning)} courses done; academy users: "
            f"{len(report.academy_users)})",
            title_justify="left",
        )
        for column in ("course", "level", "module", "due", "done"):
            courses.add_column(column)
        for course in report.learning:
            for n, module in enumerate(course.modules):
                due = _when(module.due_at)
                courses.add_row(
                    course.id if n == 0 else "",
                    course.level if n == 0 else "",
                    module.id,
                    f"[red]{due} overdue[/red]" if module.overdue else due,
                    _when(module.done_at),
                )
        out.print(courses)
    if report.waiting_for_courses:
        out.print(
            f"Review waits for these courses: {', '.join(report.waiting_for_courses)}",
            highlight=False,
        )

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


# --- report: the scorecard --------------------------------------------------------------------


def _day_or_time(value: str | None, option: str) -> datetime | None:
    """`2026-07-01` (midnight UTC) or an ISO 8601 time with a zone."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (2026-07-01) or a time with a zone", param_hint=option
        ) from None
    if parsed.tzinfo is None:
        if len(value) > 10:
            raise typer.BadParameter(f"{value!r} needs a zone, e.g. +00:00", param_hint=option)
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


@app.command()
def report(
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First day of the cohort (onboardings started). Default: 90 days before --to.",
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="End of the cohort, exclusive. Default: now.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="When 'now' is for overdue, retention and ticket windows. Default: now."),
    ] = None,
    by: Annotated[
        str,
        typer.Option(help="Breakdowns, comma-separated: " + ", ".join(scorecard.DIMENSIONS)),
    ] = ",".join(scorecard.DIMENSIONS),
    retention_days: Annotated[
        int, typer.Option(min=1, help="Retention: not churned this many days after completion.")
    ] = 90,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML page with charts here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The onboarding scorecard from the database: time to first value, activation,
    completion, retention, support tickets, the funnel; by touch model, plan, industry,
    playbook. Definitions: README, Scorecard."""
    now = datetime.now(UTC)
    until = _day_or_time(end, "--to") or now
    since = _day_or_time(start, "--from") or until - timedelta(days=90)
    if since >= until:
        raise typer.BadParameter(f"must be before --to ({until:%Y-%m-%d})", param_hint="--from")
    dimensions = _listed(by) or []
    if unknown := [d for d in dimensions if d not in scorecard.DIMENSIONS]:
        raise typer.BadParameter(
            f"{', '.join(unknown)} unknown; choose from {', '.join(scorecard.DIMENSIONS)}",
            param_hint="--by",
        )
    if html is not None and not html.parent.is_dir():
        raise typer.BadParameter(f"no folder {html.parent}", param_hint="--html")
    with _db_session() as session:
        card = scorecard.build(
            session,
            since,
            until,
            as_of=_day_or_time(as_of, "--as-of") or now,
            retention_days=retention_days,
            dimensions=dimensions,
        )
    if html is not None:
        html.write_text(render_html(card), encoding="utf-8")
        err.print(f"wrote {html}")
    if as_json:
        out.print_json(card.model_dump_json())
    else:
        print_scorecard(card, out)


# --- csm: the roster ------------------------------------------------------------------------

csm_app = typer.Typer(
    help="The CSM roster: who takes onboardings, for which touch models, how many at once.",
    no_args_is_help=True,
)
app.add_typer(csm_app, name="csm")


@contextmanager
def _db_session() -> Iterator[Session]:
    """A database session (roster, report); a refusal becomes exit 1 with its reason."""
    engine = make_engine(load_settings().database_url)
    try:
        check_schema(engine)
        with Session(engine, expire_on_commit=False) as session:
            yield session
    except (RosterError, SchemaError) as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(1) from None
    except OperationalError as error:
        err.print(f"[red]error:[/red] database: {error.orig}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def _listed(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


TOUCH_MODELS = Annotated[
    str | None, typer.Option(help="Touch models served, comma-separated: high,low,tech,community.")
]
INDUSTRIES = Annotated[
    str | None, typer.Option(help="Industries preferred, comma-separated (optional).")
]
CAPACITY = Annotated[int | None, typer.Option(help="Most active onboardings at once.")]
CHAT = Annotated[str | None, typer.Option(help="Chat handle, e.g. @mei.")]


@csm_app.command("add")
def csm_add(
    csm_id: Annotated[str, typer.Argument(help="The CSM's id, e.g. csm-011.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    email: Annotated[str, typer.Option(help="Work email.")],
    touch_models: TOUCH_MODELS = None,
    industries: INDUSTRIES = None,
    capacity: CAPACITY = None,
    chat: CHAT = None,
) -> None:
    """Add a CSM to the roster."""
    given = {
        "touch_models": _listed(touch_models),
        "industries": _listed(industries),
        "capacity": capacity,
        "chat": chat,
    }
    try:
        entry = RosterEntry(
            id=csm_id,
            name=name,
            email=email,
            **{key: value for key, value in given.items() if value is not None},
        )
    except ValidationError as error:
        raise typer.BadParameter(format_validation_error(error)) from None
    with _db_session() as session:
        add_csm(session, entry=entry)
        waiting = queued(session)
    out.print(f"added {entry.id} ({entry.name}), capacity {entry.capacity}")
    if waiting:
        out.print(
            f"{len(waiting)} onboarding(s) wait in the queue: "
            f"{', '.join(o.account_id for o in waiting)}; `starter.py reassign ACCOUNT --to "
            f"{entry.id} --reason ...` moves one"
        )


@csm_app.command("update")
def csm_update(
    csm_id: Annotated[str, typer.Argument(help="The CSM's id.")],
    name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    email: Annotated[str | None, typer.Option(help="Work email.")] = None,
    touch_models: TOUCH_MODELS = None,
    industries: INDUSTRIES = None,
    capacity: CAPACITY = None,
    chat: CHAT = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Take new onboardings or not.")
    ] = None,
) -> None:
    """Change a CSM's details; only the options given change."""
    changes = {
        "name": name,
        "email": email,
        "touch_models": _listed(touch_models),
        "industries": _listed(industries),
        "capacity": capacity,
        "chat": chat,
        "active": active,
    }
    changes = {key: value for key, value in changes.items() if value is not None}
    if not changes:
        raise typer.BadParameter("give at least one option to change (see --help)")
    with _db_session() as session:
        row = update_csm(session, csm_id=csm_id, changes=changes)
        load = active_loads(session).get(csm_id, 0)
    out.print(f"updated {csm_id}: {', '.join(sorted(changes))}")
    if load > row.capacity:
        out.print(
            f"[yellow]note:[/yellow] {csm_id} has {load} active onboardings, above the new "
            f"capacity {row.capacity}; they get no new ones until below it"
        )


@csm_app.command("remove")
def csm_remove(csm_id: Annotated[str, typer.Argument(help="The CSM's id.")]) -> None:
    """Take a CSM off the roster: no new onboardings (refused while they have active ones)."""
    with _db_session() as session:
        out.print(remove_csm(session, csm_id=csm_id))


class CsmLine(BaseModel):
    id: str
    name: str
    email: str
    touch_models: list[str]
    industries: list[str]
    chat: str | None
    active_onboardings: int
    capacity: int
    active: bool


@csm_app.command("list")
def csm_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The roster with each CSM's load against capacity, and the queue."""
    with _db_session() as session:
        load = active_loads(session)
        lines = [
            CsmLine(**row.model_dump(), active_onboardings=load.get(row.id, 0))
            for row in session.exec(select(Csm).order_by(Csm.id)).all()
        ]
        waiting = [o.account_id for o in queued(session)]
    if as_json:
        out.print_json(
            json.dumps({"csms": [line.model_dump() for line in lines], "queue": waiting})
        )
        return
    table = Table()
    for column in ("csm", "name", "touch models", "industries", "load", "active"):
        table.add_column(column)
    for line in lines:
        full = line.active_onboardings >= line.capacity
        table.add_row(
            line.id,
            line.name,
            ",".join(line.touch_models),
            ",".join(line.industries) or "-",
            ("[red]" if full else "")
            + f"{line.active_onboardings}/{line.capacity}"
            + (" full[/red]" if full else ""),
            "yes" if line.active else "no",
        )
    out.print(table)
    out.print(f"queue: {', '.join(waiting) if waiting else 'empty'}")


def main() -> NoReturn:
    try:
        app()
        status = 0
    except (SettingsError, SchemaError) as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        status = 1
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    # See worker.py: skip interpreter finalisation (temporalio/sdk-python#300).
    os._exit(status)


if __name__ == "__main__":
    main()
