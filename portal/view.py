"""What the customer's page shows, from the `status` query and the playbook (pure, no I/O):
the stages as a tracker, the checklist, the learning path, who helps, and the projected
go-live date with whether the onboarding is on track, behind or stuck.

**The projected go-live** is when Review is expected to pass. The pace so far is the time
the finished stages took over the time the playbook gave them (1 before any stage has
finished; between 0.25 and 4). What is left is the current stage's deadline at that pace,
less the time already spent in it (at least a day), plus each later stage up to Review at
that pace. **On track**: no later than the plan's own date (the start plus every deadline up
to Review, moved by the time paused now) plus a day; **behind**: later; **stuck**: the clock
is paused, or the current stage has been open for more than twice its deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from models.enums import JOURNEY, Stage
from models.everboarding import EverboardingStatus
from models.journey import TaskStatus
from models.onboarding import OnboardingStatus

GO_LIVE = Stage.REVIEW  # the stage whose end is the customer's go-live
CUSTOMER = "customer"  # the owner of the tasks the customer ticks off
SLACK = timedelta(days=1)


class Outlook(StrEnum):
    ON_TRACK = "on track"
    BEHIND = "behind"
    STUCK = "stuck"
    LIVE = "live"


@dataclass(frozen=True)
class Step:
    stage: Stage
    state: str  # done, current, upcoming
    since: datetime | None = None


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    owner: str
    due_at: datetime
    done_at: datetime | None
    overdue_by: timedelta | None  # None: not overdue
    tickable: bool  # the customer's own, not done yet


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    modules_done: int
    modules: int


@dataclass(frozen=True)
class Projection:
    go_live: datetime
    planned: datetime | None
    outlook: Outlook


@dataclass(frozen=True)
class Page:
    account_name: str
    stage: Stage
    stage_since: datetime
    closed: bool
    completed: bool
    steps: list[Step]
    tasks: list[Task]
    courses: list[Course]
    projection: Projection | None
    paused: bool
    users: int = 0
    next_digest_at: datetime | None = None  # after completion: the everboarding's
    next_courses: list[str] = field(default_factory=list)


def page(
    status: OnboardingStatus,
    deadlines: Mapping[str, timedelta],
    now: datetime,
    lives_on: EverboardingStatus | None = None,
) -> Page:
    closed = status.stage in (Stage.CANCELLED, Stage.LAPSED)
    return Page(
        account_name=status.account_name,
        stage=status.stage,
        stage_since=status.stage_entered_at,
        closed=closed,
        completed=status.stage is Stage.COMPLETED,
        steps=_steps(status),
        tasks=[_task(t, now) for t in sorted(status.tasks, key=lambda t: (t.due_at, t.id))],
        courses=[
            Course(c.id, c.title, sum(1 for m in c.modules if m.done_at), len(c.modules))
            for c in status.learning
        ],
        projection=None if closed else project(status, deadlines, now),
        paused=status.paused_since is not None,
        users=len(status.academy_users),
        next_digest_at=lives_on.next_digest_at if lives_on else None,
        next_courses=[course.title for course in lives_on.next_courses] if lives_on else [],
    )


def _steps(status: OnboardingStatus) -> list[Step]:
    entered = {visit.stage: visit.entered_at for visit in status.history}
    current = status.stage
    steps = []
    for stage in JOURNEY[:-1]:  # the six stages; completed is the end, not a stage
        if current is Stage.COMPLETED or stage.position < current.position:
            state = "done"
        elif stage is current:
            state = "current"
        else:
            state = "upcoming"
        steps.append(Step(stage, state, entered.get(stage)))
    return steps


def _task(task: TaskStatus, now: datetime) -> Task:
    overdue = task.overdue(now)
    return Task(
        id=task.id,
        title=task.title,
        owner=task.owner,
        due_at=task.due_at,
        done_at=task.done_at,
        overdue_by=now - task.due_at if overdue else None,
        tickable=task.owner == CUSTOMER and task.done_at is None,
    )


def project(
    status: OnboardingStatus, deadlines: Mapping[str, timedelta], now: datetime
) -> Projection:
    """The projected go-live (see the module's docstring for how), against each stage's
    deadline on the run's playbook (`OnboardingStatus.stage_deadlines`)."""
    visits = {visit.stage: visit for visit in status.history}
    passed = visits.get(GO_LIVE)
    if passed is not None and passed.exited_at is not None:
        return Projection(passed.exited_at, None, Outlook.LIVE)
    if status.stage in (Stage.EXPAND, Stage.COMPLETED):  # a run from before the history
        return Projection(status.stage_entered_at, None, Outlook.LIVE)

    def planned(stage: Stage) -> timedelta:
        return deadlines.get(stage.value, timedelta(0))

    route = JOURNEY[: GO_LIVE.position + 1]
    took = [
        (v.exited_at - v.entered_at, planned(s))
        for s, v in visits.items()
        if v.exited_at is not None and s in route
    ]
    given = sum((p for _, p in took), timedelta(0))
    pace = (sum((t for t, _ in took), timedelta(0)) / given) if given else 1.0
    pace = min(4.0, max(0.25, pace))

    clock = status.paused_since or now
    current = status.stage
    in_stage = clock - status.stage_entered_at
    left = max(planned(current) * pace - in_stage, SLACK)
    later = [s for s in route if s.position > current.position]
    go_live = now + left + sum((planned(s) * pace for s in later), timedelta(0))

    start = status.history[0].entered_at if status.history else status.stage_entered_at
    paused_for = now - status.paused_since if status.paused_since else timedelta(0)
    plan = start + sum((planned(s) for s in route), timedelta(0)) + paused_for

    if status.paused_since is not None or in_stage > 2 * planned(current):
        outlook = Outlook.STUCK
    elif go_live > plan + SLACK:
        outlook = Outlook.BEHIND
    else:
        outlook = Outlook.ON_TRACK
    return Projection(go_live, plan, outlook)
