"""The CSM's and other systems' commands on a running onboarding (milestones, tasks,
deadlines, pause, cancel, engagement, escalations, champion, users, reassignment) and on
the everboardings (announce, churn)."""

from __future__ import annotations

import getpass
import json
import re
from datetime import datetime, timedelta
from email.utils import parseaddr
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError

from cli.app import (
    Failure,
    admitted,
    app,
    connect,
    err,
    existing_onboarding,
    is_not_found,
    out,
    parse_time,
    run,
    when,
)
from models.enums import CancelReason, EngagementKind, Milestone, Stage
from workflows.contract import (
    EVERBOARDING_WORKFLOW,
    SA_PLAN,
    Signals,
    Updates,
    everboarding_id,
    onboarding_id,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from models.journey import Contact

R = TypeVar("R")


class UsersAction(StrEnum):
    ADD = "add"


@app.command()
def signal(
    account: Annotated[str, typer.Argument(help="The account id (slug), e.g. acme.")],
    milestone: Annotated[Milestone, typer.Argument(help="The milestone reached.")],
    by: Annotated[str, typer.Option(help="Who reports it, e.g. csm-007.")],
    at: Annotated[
        str | None, typer.Option(help="When it happened (ISO 8601 with zone); default now.")
    ] = None,
    note: Annotated[str | None, typer.Option(help="A short note for the record.")] = None,
) -> None:
    """Report a milestone; the onboarding accepts it or says why not."""
    from models.journey import CompleteMilestone, MilestoneResult

    report = admitted(
        CompleteMilestone, milestone=milestone, by=by, at=parse_time(at, "--at"), note=note
    )

    async def go() -> None:
        result = await _update(account, Updates.COMPLETE_MILESTONE, report, MilestoneResult)
        if result.milestone.stage is result.stage:
            out.print(f"accepted: {milestone} recorded for {account}; stage {result.stage} done")
        else:
            out.print(
                f"accepted: {milestone} recorded early for {account} (now in {result.stage}); "
                f"it applies when {milestone.stage} is reached"
            )

    run(go())


async def _update(account: str, update: str, arg: BaseModel, result: type[R]) -> R:
    """Send a CSM's update; a rejection becomes the validator's reason, exit 1."""
    handle = await existing_onboarding(await connect(), account)
    try:
        return await handle.execute_update(update, arg, result_type=result)
    except WorkflowUpdateFailedError as error:
        reason = error.cause.message if error.cause else str(error)  # type: ignore[attr-defined]
        raise Failure(f"rejected: {reason}") from None
    except RPCError as error:
        if is_not_found(error):
            raise Failure(f"the onboarding of {account} has already ended") from None
        raise


ACCOUNT = Annotated[str, typer.Argument(help="The account id (slug), e.g. acme.")]
WHO = Annotated[str, typer.Option("--by", help="Who does it, e.g. csm-007.")]
# A customer leaving (cancel, churn): their words, and who records them.
CUSTOMER_SAID = Annotated[str | None, typer.Option(help="What they said.")]
RECORDED_BY = Annotated[str, typer.Option(help="Who records it.")]
CURRENT_USER = getpass.getuser()  # the default "who" for what a CSM records


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
    from models.journey import CompleteTask, TaskStatus

    completion = admitted(CompleteTask, task_id=task_id, by=by, note=note)

    async def go() -> None:
        result = await _update(account, Updates.COMPLETE_TASK, completion, TaskStatus)
        out.print(f"accepted: task {result.id} of {account} done")

    run(go())


def _parse_extension(value: str) -> tuple[datetime | None, timedelta | None]:
    """`+7d` adds to the deadline (due_at, extend_by); an ISO 8601 time with zone sets it."""
    from models.playbook import parse_duration

    if value.startswith("+"):
        amount = parse_duration(value[1:])
        if not isinstance(amount, timedelta):
            raise typer.BadParameter(f"{value!r}: use +90s, +30m, +36h, +7d or +2w")
        return None, amount
    return parse_time(value, "--by"), None


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
    who: Annotated[str, typer.Option("--who", help="Who moves it.")] = CURRENT_USER,
) -> None:
    """Move a deadline; its reminders follow."""
    from models.journey import ExtendDeadline, TaskStatus

    due_at, extend_by = _parse_extension(to)
    request = admitted(
        ExtendDeadline, task_id=task_id, due_at=due_at, extend_by=extend_by, reason=reason, by=who
    )

    async def go() -> None:
        result = await _update(account, Updates.EXTEND_DEADLINE, request, TaskStatus)
        out.print(f"accepted: {task_id or 'the stage'} of {account} now due {when(result.due_at)}")

    run(go())


@app.command()
def pause(
    account: ACCOUNT,
    by: WHO,
    reason: Annotated[str, typer.Option(help="What the onboarding waits on.")],
) -> None:
    """Stop the clock: no reminders, and paused time does not count against deadlines."""
    from models.journey import PauseClock
    from models.onboarding import OnboardingStatus

    pause_clock = admitted(PauseClock, by=by, reason=reason)

    async def go() -> None:
        await _update(account, Updates.PAUSE, pause_clock, OnboardingStatus)
        out.print(f"accepted: the clock of {account} is paused")

    run(go())


@app.command()
def resume(account: ACCOUNT, by: WHO) -> None:
    """Restart the clock; every open deadline moves by the time paused."""
    from models.journey import ResumeClock
    from models.onboarding import OnboardingStatus

    resume_clock = admitted(ResumeClock, by=by)

    async def go() -> None:
        result = await _update(account, Updates.RESUME, resume_clock, OnboardingStatus)
        out.print(
            f"accepted: the clock of {account} runs again; next deadline "
            f"{when(result.next_deadline)}"
        )

    run(go())


@app.command()
def cancel(
    account: ACCOUNT,
    reason: Annotated[CancelReason, typer.Option(help="Why the customer lets go.")],
    note: CUSTOMER_SAID = None,
    by: RECORDED_BY = CURRENT_USER,
) -> None:
    """End the onboarding: thank the customer, send the exit survey, start no everboarding."""
    from models.journey import Cancel
    from models.onboarding import OnboardingStatus

    cancellation = admitted(Cancel, reason=reason, note=note, by=by)

    async def go() -> None:
        await _update(account, Updates.CANCEL, cancellation, OnboardingStatus)
        out.print(f"accepted: the onboarding of {account} is cancelled ({reason})")

    run(go())


@app.command()
def engagement(
    account: ACCOUNT,
    kind: Annotated[EngagementKind, typer.Option(help="What the customer did.")],
    value: Annotated[str | None, typer.Option(help="e.g. the course id or NPS score.")] = None,
) -> None:
    """Report customer engagement (as the product does by signal)."""
    from models.journey import Engagement

    if kind is EngagementKind.COURSE_COMPLETED:
        _check_course(value)
    signal = admitted(Engagement, kind=kind, value=value)

    async def go() -> None:
        client = await connect()
        handle = await existing_onboarding(client, account)
        if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
            await handle.signal(Signals.ENGAGEMENT, signal)
            out.print(f"sent: {kind} for {account}")
            return
        # Onboarding over: progress and activity count for the everboarding.
        lives_on = await _running_everboarding(client, account)
        await lives_on.signal(Signals.ENGAGEMENT, signal)
        out.print(f"sent: {kind} for {account} (everboarding)")

    run(go())


def _check_course(value: str | None) -> None:
    """Course progress must name a course (or course/module) of the academy catalogue: a
    typo would otherwise be ignored by the workflow without anyone noticing."""
    if not value:
        raise typer.BadParameter("course_completed needs --value COURSE or COURSE/MODULE")
    from infra.settings import load_settings
    from models.academy import LearningPath, load_academy
    from models.playbook import PlaybookError

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
    from models.journey import Acknowledge, Escalation

    acknowledgement = admitted(Acknowledge, by=by, note=note)

    async def go() -> None:
        result = await _update(account, Updates.ACKNOWLEDGE_ESCALATION, acknowledgement, Escalation)
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
    from models.journey import SetChampion
    from models.onboarding import OnboardingStatus

    change = admitted(SetChampion, champion={"name": name, "email": email, "title": title}, by=by)

    async def go() -> None:
        await _update(account, Updates.SET_CHAMPION, change, OnboardingStatus)
        out.print(f"accepted: {name} is the champion of {account}")

    run(go())


@app.command()
def users(
    account: ACCOUNT,
    action: Annotated[UsersAction, typer.Argument(help="add")],
    addresses: Annotated[
        list[str], typer.Argument(help='Emails, or "Name <email>", of the new users.')
    ],
    by: Annotated[str, typer.Option(help="Who adds them.")] = CURRENT_USER,
) -> None:
    """Give new users academy access (now, or at kickoff if it has not happened yet)."""
    from models.journey import UsersAdded
    from models.onboarding import OnboardingStatus

    people = [_contact(address) for address in addresses]
    added = admitted(UsersAdded, users=people, by=by)  # duplicates, how many

    async def go() -> None:
        result = await _update(account, Updates.ADD_USERS, added, OnboardingStatus)
        when_ = "now" if result.stage not in (Stage.DEPART, Stage.HANDOFF) else "at kickoff"
        out.print(f"accepted: {len(people)} user(s) for {account}; academy access {when_}")

    run(go())


def _contact(address: str) -> Contact:
    from pydantic import ValidationError

    from models.door import admit
    from models.journey import Contact
    from models.playbook import format_validation_error

    name, email = parseaddr(address)
    try:
        return admit(Contact, {"name": name or email.split("@")[0], "email": email or address})
    except ValidationError as error:
        raise typer.BadParameter(f"{address!r}: {format_validation_error(error)}") from None


@app.command()
def reassign(
    account: ACCOUNT,
    to: Annotated[str, typer.Option("--to", help="The CSM who takes over, e.g. csm-009.")],
    reason: Annotated[str, typer.Option(help="Why, for the record and both CSMs.")],
    by: Annotated[str, typer.Option(help="Who decides.")] = CURRENT_USER,
    over_capacity: Annotated[
        bool, typer.Option("--over-capacity", help="Assign even if they are at capacity.")
    ] = False,
) -> None:
    """Move an onboarding (open tasks, escalations, reminders) to another CSM; both are told."""
    from models.journey import CsmRef, ReassignCsm

    reassignment = admitted(ReassignCsm, to=to, reason=reason, by=by, over_capacity=over_capacity)

    async def go() -> None:
        result = await _update(account, Updates.REASSIGN_CSM, reassignment, CsmRef)
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
    from models.everboarding import FeatureAnnouncement

    announcement = admitted(
        FeatureAnnouncement,
        id=feature_id or _slug(feature),
        name=feature,
        summary=summary,
        plans=[part.strip() for part in plans.split(",") if part.strip()],
    )

    async def go() -> None:
        client = await connect()
        plan_list = ", ".join(json.dumps(str(plan)) for plan in announcement.plans)
        query = (
            f"WorkflowType = '{EVERBOARDING_WORKFLOW}' AND ExecutionStatus = 'Running' "
            f"AND {SA_PLAN.name} IN ({plan_list})"
        )
        told = []
        async for execution in client.list_workflows(query):
            handle = client.get_workflow_handle(execution.id)
            await handle.signal(Signals.ANNOUNCE_FEATURE, announcement)
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
    note: CUSTOMER_SAID = None,
    by: RECORDED_BY = CURRENT_USER,
) -> None:
    """The customer has left: end their everboarding and record the churn (retention)."""
    from models.everboarding import Churn

    churned = admitted(Churn, reason=reason, note=note, by=by)

    async def go() -> None:
        client = await connect()
        handle = await _running_everboarding(client, account)
        await handle.signal(Signals.CUSTOMER_CHURNED, churned)
        out.print(f"sent: {account} churned ({reason}); the everboarding ends")

    run(go())


async def _running_everboarding(client: Client, account: str) -> WorkflowHandle[Any, Any]:
    handle = client.get_workflow_handle(everboarding_id(account))
    try:
        if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
            return handle
    except RPCError as error:
        if not is_not_found(error):
            raise
    try:
        onboarding = await client.get_workflow_handle(onboarding_id(account)).describe()
    except RPCError as error:
        if is_not_found(error):
            raise Failure(f"no onboarding for account {account}") from None
        raise
    if onboarding.status is WorkflowExecutionStatus.RUNNING:
        raise Failure(
            f"{account} is still onboarding (no everboarding yet); "
            "use `starter.py cancel` to end an onboarding"
        )
    raise Failure(f"{account} has no running everboarding")
