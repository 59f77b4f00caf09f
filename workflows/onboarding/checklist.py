"""The checklist and its clock: the stage's deadline, each task's due date, reminders,
extensions and the paused clock. Plain code: it takes `now` and returns decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.activities import TaskDue
from models.journey import ExtendDeadline, Stage, TaskStatus
from models.onboarding import ClockState
from models.playbook import Playbook, TaskPlan
from models.wording import duration

# Who owns finishing each waiting stage: their people get its reminders.
STAGE_OWNER = {
    Stage.DEPART: "ae",
    Stage.KICKOFF: "csm",
    Stage.ADOPT: "customer",
    Stage.REVIEW: "csm",
}
# The stages whose playbook tasks make up the customer's checklist.
PLANNED_STAGES = (Stage.KICKOFF, Stage.ADOPT, Stage.REVIEW)
STAGE_STEP = "stage"  # the id the stage's own deadline goes by ("Overdue: stage")


@dataclass(frozen=True)
class Reminder:
    step: TaskStatus
    owner: str
    """Whose step it is (the playbook's `recipients` say who that means)."""
    key: str
    """`{stage}:deadline:reminder:{n}` or `{stage}:task:{id}:reminder:{n}`."""


def new_step(
    plan: TaskPlan, stage: Stage, start: datetime, active_from: datetime | None = None
) -> TaskStatus:
    """The checklist's step for a playbook task of `stage`, due its `due` after `start`."""
    return TaskStatus(
        id=plan.id,
        title=plan.title,
        owner=plan.owner,
        stage=stage,
        required=plan.required,
        due_at=start + plan.due,
        active_from=active_from,
    )


def due(step: TaskStatus) -> TaskDue:
    return TaskDue(
        stage=step.stage,
        id=step.id,
        title=step.title,
        owner=step.owner,
        required=step.required,
        due_at=step.due_at,
        done_at=step.done_at,
    )


class Checklist:
    def __init__(self, state: ClockState, playbook: Playbook) -> None:
        self.state = state
        self.playbook = playbook

    # --- the plan -----------------------------------------------------------------------

    def plan(self, entered: datetime) -> None:
        """Every task from kickoff on, dated on the planned timeline (each stage starts when
        the previous one's deadline ends), so the customer sees a date on every step. Only
        the kickoff's tasks count from now; later ones are re-dated when their stage starts."""
        stage_start = entered
        for stage in PLANNED_STAGES:
            plan = self.playbook.stage(stage)
            for task in plan.tasks:
                active_from = entered if stage is Stage.KICKOFF else None
                self.state.tasks.setdefault(
                    task.id, new_step(task, stage, stage_start, active_from)
                )
            stage_start += plan.deadline

    def start_stage(self, stage: Stage, entered: datetime) -> None:
        """Give the entered stage its deadline and start its tasks' clocks."""
        plan = self.playbook.stage(stage)
        self.state.stage_clock = None
        if stage in STAGE_OWNER and not plan.automated:
            self.state.stage_clock = TaskStatus(
                id=STAGE_STEP,
                title=f"finish {stage}",
                owner=STAGE_OWNER[stage],
                stage=stage,
                required=True,
                due_at=entered + plan.deadline,
                active_from=entered,
            )
        if stage in PLANNED_STAGES:
            for task_plan in plan.tasks:
                task = self.state.tasks.get(task_plan.id)
                if task is not None and task.done_at is None:
                    # A task counts from the day its stage really starts.
                    task.due_at = entered + task_plan.due + task.extended_by
                    task.active_from = entered

    def stop(self) -> None:
        """The onboarding ended: no deadline is open any more."""
        self.state.stage_clock = None
        for task in self.state.tasks.values():
            task.active_from = None

    # --- what is open and due -----------------------------------------------------------

    def open_steps(self) -> list[TaskStatus]:
        """The stage's own deadline and the open tasks of the stages reached so far."""
        steps = [self.state.stage_clock] if self.state.stage_clock else []
        return steps + [
            task
            for task in self.state.tasks.values()
            if task.done_at is None and task.active_from is not None
        ]

    def overdue(self, now: datetime) -> list[str]:
        """Steps past their due time; none while paused (paused time does not count)."""
        if self.paused:
            return []
        return [step.id for step in self.open_steps() if step.overdue(now)]

    def next_deadline(self) -> datetime | None:
        return min((step.due_at for step in self.open_steps()), default=None)

    def next_reminder(self, step: TaskStatus) -> datetime | None:
        """The next reminder time for an open step, or None when its reminders are used up.

        Times before the step became active or before its last reminder are skipped, so a
        moved deadline re-plans from where the reminders stood, and an outage never causes a
        burst."""
        if step.done_at is not None or step.active_from is None:
            return None
        after = max(step.active_from, step.last_reminded_at or step.active_from)
        return next((t for t in self.playbook.reminders.schedule(step.due_at) if t > after), None)

    def due_reminders(self, now: datetime) -> list[Reminder]:
        """The reminders due by `now`, at most one per step, counted as sent."""
        if self.paused:
            return []
        reminders = []
        for step in self.open_steps():
            at = self.next_reminder(step)
            if at is None or at > now:
                continue
            step.reminders_sent += 1
            step.last_reminded_at = now
            if step is self.state.stage_clock:
                owner, what = STAGE_OWNER[step.stage], "deadline"
            else:
                owner, what = step.owner, f"task:{step.id}"
            key = f"{step.stage}:{what}:reminder:{step.reminders_sent}"
            reminders.append(Reminder(step=step, owner=owner, key=key))
        return reminders

    def next_wake(self, now: datetime) -> datetime | None:
        """The next moment a reminder is due or a deadline passes (a missed deadline raises
        the risk); None while paused."""
        if self.paused:
            return None
        times = [self.next_reminder(step) for step in self.open_steps()]
        times += [step.due_at for step in self.open_steps()]
        return min((t for t in times if t is not None and t > now), default=None)

    def lapses_at(self, stage: Stage, entered: datetime) -> datetime | None:
        """When the stage is overdue beyond what the playbook allows: its deadline as planned
        (moved by pauses, not by extensions) plus the most an extension may add."""
        clock = self.state.stage_clock
        if clock is not None:
            return clock.due_at - clock.extended_by + self.playbook.max_extension
        if stage in STAGE_OWNER:  # a waiting stage the playbook automates
            return entered + self.playbook.stage(stage).deadline + self.playbook.max_extension
        return None

    def tasks(self) -> list[TaskDue]:
        return [due(task) for task in self.state.tasks.values()]

    # --- what people do -----------------------------------------------------------------

    def find(self, task_id: str, account_id: str) -> TaskStatus:
        """The task, or ValueError naming the known ones."""
        task = self.state.tasks.get(task_id)
        if task is None:
            known = ", ".join(self.state.tasks) or "none yet (the checklist is made at kickoff)"
            raise ValueError(f"unknown task {task_id!r} for {account_id}; tasks: {known}")
        return task

    def check_done(self, task_id: str, account_id: str) -> TaskStatus:
        task = self.find(task_id, account_id)
        if task.done_at is not None:
            raise ValueError(
                f"task {task.id} was already done at {task.done_at:%Y-%m-%d %H:%M} UTC "
                f"by {task.done_by}"
            )
        return task

    def finish(self, task_id: str, by: str, at: datetime) -> TaskStatus | None:
        """Mark a task done; None when it is unknown or already done (a repeated signal)."""
        task = self.state.tasks.get(task_id)
        if task is None or task.done_at is not None:
            return None
        task.done_at, task.done_by = at, by
        return task

    def stage_tasks_done(self, stage: Stage) -> bool:
        """Every required task of the stage is done (and it has some)."""
        required = [t for t in self.state.tasks.values() if t.stage is stage and t.required]
        return bool(required) and all(t.done_at is not None for t in required)

    def _target(self, update: ExtendDeadline, account_id: str, stage: Stage) -> TaskStatus:
        if update.task_id is None:
            if self.state.stage_clock is None:
                raise ValueError(f"stage {stage} has no deadline to move")
            return self.state.stage_clock
        return self.find(update.task_id, account_id)

    def check_extension(
        self, update: ExtendDeadline, now: datetime, account_id: str, stage: Stage
    ) -> datetime:
        """The new due time, or ValueError saying why the extension is refused."""
        step = self._target(update, account_id, stage)
        if step.done_at is not None:
            raise ValueError(f"task {step.id} is already done")
        new_due = update.due_at if update.due_at is not None else step.due_at + update.extend_by  # type: ignore[operator]
        if new_due <= now:
            raise ValueError(f"{new_due:%Y-%m-%d %H:%M} UTC is in the past")
        if new_due <= step.due_at:
            raise ValueError(
                f"{new_due:%Y-%m-%d %H:%M} UTC is not later than the current deadline "
                f"{step.due_at:%Y-%m-%d %H:%M} UTC"
            )
        allowed = self.playbook.max_extension - step.extended_by
        if new_due - step.due_at > allowed:
            raise ValueError(
                f"the playbook allows moving this deadline by "
                f"{duration(self.playbook.max_extension)} in total; {duration(allowed)} is left"
            )
        return new_due

    def extend(
        self, update: ExtendDeadline, now: datetime, account_id: str, stage: Stage
    ) -> TaskStatus:
        new_due = self.check_extension(update, now, account_id, stage)
        step = self._target(update, account_id, stage)
        step.extended_by += new_due - step.due_at
        step.due_at = new_due
        return step

    # --- the paused clock ---------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self.state.paused_at is not None

    def pause(self, now: datetime) -> None:
        self.state.paused_at = now

    def resume(self, now: datetime) -> tuple[datetime, timedelta]:
        """Restart the clock: every open deadline moves by the part of the pause it lived
        through (all of it, or, for a stage entered while paused, the time since). Returns
        when the pause began and how long it lasted (the risk's clocks move by it too)."""
        paused_at = self.state.paused_at
        assert paused_at is not None
        for step in [self.state.stage_clock, *self.state.tasks.values()]:
            if step is not None and step.done_at is None:
                lived = now - max(paused_at, step.active_from or paused_at)
                step.due_at += lived
                if step.active_from is not None:
                    step.active_from += lived
                if step.last_reminded_at is not None:
                    step.last_reminded_at += lived
        self.state.paused_at = None
        return paused_at, now - paused_at
