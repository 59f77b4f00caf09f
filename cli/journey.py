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
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from cli.app import (
    admitted,
    app,
    connect,
    error_line,
    note_line,
    out,
    parse_amount,
    parse_time,
    run,
    time_examples,
    when,
)
from models.enums import CancelReason, EngagementKind, Milestone, Stage
from models.limits import MAX_DURATION
from models.wording import duration
from workflows.contract import EVERBOARDING_WORKFLOW, SA_PLAN, Signals, Updates, everboarding_id

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
    by: Annotated[str, typer.Option(metavar="WHO", help="Who reports it, e.g. csm-007.")],
    at: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            help="When it happened, with its zone, e.g. 2026-07-01T09:00Z; default now.",
        ),
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
    """Send a CSM's update; a rejection is the validator's reason, exit 1."""
    from service.onboardings import act

    return await act(await connect(), account, update, arg, result)


ACCOUNT = Annotated[str, typer.Argument(help="The account id (slug), e.g. acme.")]
WHO = Annotated[str, typer.Option("--by", metavar="WHO", help="Who does it, e.g. csm-007.")]
# A customer leaving (cancel, churn): their words, and who records them.
CUSTOMER_SAID = Annotated[str | None, typer.Option(help="What they said.")]
CURRENT_USER = getpass.getuser()  # the default "who" for what a CSM records
YOU = f"default: you, {CURRENT_USER}"  # how --help says it
RECORDED_BY = Annotated[
    str, typer.Option(metavar="WHO", help=f"Who records it ({YOU}).", show_default=False)
]


@app.command()
def task(
    account: ACCOUNT,
    task_id: Annotated[
        str, typer.Argument(metavar="TASK", help="The checklist task, e.g. add-users.")
    ],
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


def _extension_amount(value: str, option: str) -> timedelta:
    """`+7d`, `36h`, `2w`: what to add to the deadline, bounded like a playbook's durations."""
    amount = parse_amount(value)
    if amount is None:
        raise typer.BadParameter(
            f"{value!r} is not an amount of time; use +7d, 36h or 2w", param_hint=option
        )
    if amount <= timedelta(0):
        raise typer.BadParameter(f"{value!r}: must be longer than zero", param_hint=option)
    if amount > MAX_DURATION:
        raise typer.BadParameter(
            f"{value!r} is {duration(amount)}; at most {duration(MAX_DURATION)}",
            param_hint=option,
        )
    return amount


def _old_extension(value: str) -> bool:
    """`--by` used to take the extension (`+7d` or a time): tell that form from a person."""
    if parse_amount(value) is not None:
        return True
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


@app.command()
def extend(
    account: ACCOUNT,
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why, for the record.")],
    for_: Annotated[
        str | None,
        typer.Option(
            "--for", metavar="AMOUNT", help="How much later: +7d, 36h or 2w, added to the deadline."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            metavar="WHEN",
            help="The new deadline: a date (2026-12-01, midnight UTC) or a time with its zone "
            "(2026-12-01T17:00Z).",
        ),
    ] = None,
    task_id: Annotated[
        str | None,
        typer.Option("--task", metavar="TASK", help="The task; without it, the stage's deadline."),
    ] = None,
    by: Annotated[
        str, typer.Option(metavar="WHO", help=f"Who moves it ({YOU}).", show_default=False)
    ] = CURRENT_USER,
    who: Annotated[str | None, typer.Option(hidden=True)] = None,  # --by's old name, for scripts
) -> None:
    """Move a deadline later by an amount (--for) or to a date (--until); its reminders
    follow."""
    from models.journey import ExtendDeadline, TaskStatus

    if _old_extension(by):
        if for_ is not None or until is not None:
            raise typer.BadParameter(
                f"{by!r} is not a person; --by names who extends", param_hint="--by"
            )
        # Scripts written when --by took the extension keep working, and are told.
        new = "--for" if parse_amount(by) is not None else "--until"
        note_line(f"--by {by} is the old spelling of {new} {by}; --by now names who extends")
        if new == "--for":
            for_ = by
        else:
            until = by
        by = who or CURRENT_USER
    elif who is not None:
        if by != CURRENT_USER:
            raise typer.BadParameter("say who extends once, with --by", param_hint="--who")
        by = who
    if for_ is not None and until is not None:
        raise typer.BadParameter("give --for or --until, not both", param_hint="--for / --until")
    if for_ is None and until is None:
        taken = f" ({by!r} after --by is who extends)" if by != CURRENT_USER else ""
        raise typer.BadParameter(
            f"say how far: --for AMOUNT, e.g. +7d, 36h or 2w, or --until WHEN, "
            f"{time_examples(dates=True, ahead=True)}{taken}",
            param_hint="--for / --until",
        )
    extend_by = _extension_amount(for_, "--for") if for_ is not None else None
    due_at = parse_time(until, "--until", dates=True, ahead=True)
    request = admitted(
        ExtendDeadline, task_id=task_id, due_at=due_at, extend_by=extend_by, reason=reason, by=by
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
        from service.onboardings import signal_all

        # Onboarding over: progress and activity count for the everboarding.
        [to] = await signal_all(
            await connect(), account, [(Signals.ENGAGEMENT, signal)], lives_on={Signals.ENGAGEMENT}
        )
        out.print(f"sent: {kind} for {account}" + (f" ({to})" if to == "everboarding" else ""))

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
        error_line(error)
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
    action: Annotated[UsersAction, typer.Argument(help="add (the only action so far).")],
    addresses: Annotated[
        list[str], typer.Argument(help='Emails, or "Name <email>", of the new users.')
    ],
    by: Annotated[
        str, typer.Option(metavar="WHO", help=f"Who adds them ({YOU}).", show_default=False)
    ] = CURRENT_USER,
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
    to: Annotated[
        str, typer.Option("--to", metavar="CSM", help="The CSM who takes over, e.g. csm-009.")
    ],
    reason: Annotated[str, typer.Option(help="Why, for the record and both CSMs.")],
    by: Annotated[
        str, typer.Option(metavar="WHO", help=f"Who decides ({YOU}).", show_default=False)
    ] = CURRENT_USER,
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
        str | None, typer.Option("--id", metavar="ID", help="Stable id (default: from the name).")
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
        from service.onboardings import running_everboarding

        handle = await running_everboarding(await connect(), account)
        await handle.signal(Signals.CUSTOMER_CHURNED, churned)
        out.print(f"sent: {account} churned ({reason}); the everboarding ends")

    run(go())
