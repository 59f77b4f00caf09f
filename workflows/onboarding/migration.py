"""Adopting a new version of the playbook in a running onboarding, under stated rules (README:
*Changing a playbook for running onboardings*):

- stages the customer already passed are not re-planned: what the new version changes there
  is refused;
- a task added to the current stage is due its `due` after the stage was entered, one added to
  a later stage on the planned timeline; a task the new version drops stops reminding if it
  is open, and stays done if it is done;
- a moved `due` or stage deadline moves the date by the difference (extensions and pauses
  kept), and never into the past: a date that would be past is a day from now (`NOTICE`);
- reminders already sent are never sent again: each step's count goes on, and its next
  reminder is planned from the last one under the new reminder policy;
- settings (reminders, risk, escalation, channels, extension and lapse limits, learning,
  everboarding) apply from now on; the current stage's automation does not change mid-stage.

Plain code: `adopt` changes an onboarding's state and says what it did; a preview is `adopt`
on a copy, so the preview and the apply cannot disagree about the same state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from models.journey import JOURNEY, Stage, TaskStatus
from models.migration import Change, ChangeKind
from models.playbook import LadderStep, Playbook, StagePlan, TaskPlan, spoken
from workflows.onboarding.checklist import PLANNED_STAGES

if TYPE_CHECKING:
    from workflows.onboarding.core import Onboarding

NOTICE = timedelta(days=1)
"""A date the new version would put in the past is this far from now instead."""

# The playbook's settings, compared field by field (stages and tasks are compared apart).
SETTINGS = (
    "reminders",
    "risk",
    "escalation",
    "channels",
    "max_extension",
    "lapse_after",
    "everboarding",
    "learning",
)


def adopt(o: Onboarding, new: Playbook, now: datetime) -> tuple[Playbook, list[Change]]:
    """Change `o`'s state for `new` (resolved for the run) and return the playbook the run
    goes on with (`new`, with what was refused kept as it was) and the changes."""
    old, stage = o.playbook, o.journey.stage
    position = JOURNEY.index(stage)
    passed = [s for s in JOURNEY[:position] if s.value in old.stages]
    ahead = [s for s in JOURNEY[position + 1 :] if s.value in new.stages]
    reminders_before = _next_reminders(o)
    changes: list[Change] = []
    stages = dict(new.stages)
    for name in passed:
        stages[name] = _keep_passed(name, old.stage(name), new.stage(name), changes)
    stages[stage] = _keep_automation(stage, old.stage(stage), new.stage(stage), changes)
    changes += _current_deadline(o, old, new, now)
    changes += [
        Change(
            kind=ChangeKind.CHANGED, subject=f"stage {name}", note=f"{said} (from when it starts)"
        )
        for name in ahead
        for said in _rule_differences(old.stage(name), new.stage(name))
    ]
    adopted = new.model_copy(update={"stages": stages})
    if o.state.clock.tasks:  # the checklist exists (made at kickoff)
        changes += _tasks(o, old, adopted, passed, now)
    else:
        changes += _plans_ahead(old, adopted)
    changes += _settings(old, new)
    changes += _escalation_level(o, adopted)
    o.use_playbook(adopted)
    changes += _reminders_moved(o, reminders_before)
    return adopted, changes


# --- stages -------------------------------------------------------------------------------


def _keep_passed(stage: Stage, old: StagePlan, new: StagePlan, changes: list[Change]) -> StagePlan:
    """A passed stage keeps its old plan: what the new version changes there is refused."""
    said = _rule_differences(old, new) + _task_differences(old, new)
    if said:
        changes.append(
            Change(
                kind=ChangeKind.REFUSED,
                subject=f"stage {stage}",
                note=f"already passed: {'; '.join(said)}",
            )
        )
    return old


def _keep_automation(
    stage: Stage, old: StagePlan, new: StagePlan, changes: list[Change]
) -> StagePlan:
    """The current stage keeps its automation: its entry actions are done."""
    if old.automated != new.automated:
        changes.append(
            Change(
                kind=ChangeKind.REFUSED,
                subject=f"stage {stage} automated",
                before=str(old.automated).lower(),
                after=str(new.automated).lower(),
                note=f"{stage} is under way: its automation applies from the next onboarding",
            )
        )
    return new.model_copy(update={"automated": old.automated})


def _rule_differences(old: StagePlan, new: StagePlan) -> list[str]:
    said = []
    if old.deadline != new.deadline:
        said.append(f"deadline {spoken(old.deadline)} → {spoken(new.deadline)}")
    for field in ("automated", "tasks_complete_stage"):
        if getattr(old, field) != getattr(new, field):
            said.append(
                f"{field} {str(getattr(old, field)).lower()} → {str(getattr(new, field)).lower()}"
            )
    return said


def _task_differences(old: StagePlan, new: StagePlan) -> list[str]:
    old_tasks, new_tasks = _by_id(old.tasks), _by_id(new.tasks)
    said = [f"task {t} added" for t in new_tasks if t not in old_tasks]
    said += [f"task {t} removed" for t in old_tasks if t not in new_tasks]
    said += [
        f"task {t} changed" for t in new_tasks if t in old_tasks and old_tasks[t] != new_tasks[t]
    ]
    return said


def _current_deadline(o: Onboarding, old: Playbook, new: Playbook, now: datetime) -> list[Change]:
    clock, stage = o.state.clock.stage_clock, o.journey.stage
    if clock is None or clock.done_at is not None:
        return []
    shift = new.stage(stage).deadline - old.stage(stage).deadline
    if not shift:
        return []
    return [_move(clock, shift, now, f"stage {stage} deadline")]


def _plans_ahead(old: Playbook, new: Playbook) -> list[Change]:
    """Before kickoff nothing is planned yet: the checklist will be made from the new plan."""
    return [
        Change(
            kind=ChangeKind.CHANGED, subject=f"stage {stage}", note=f"{said} (planned at kickoff)"
        )
        for stage in PLANNED_STAGES
        for said in _task_differences(old.stage(stage), new.stage(stage))
    ]


# --- tasks --------------------------------------------------------------------------------


def _tasks(
    o: Onboarding, old: Playbook, new: Playbook, passed: list[Stage], now: datetime
) -> list[Change]:
    changes: list[Change] = []
    tasks, removed = o.state.clock.tasks, o.state.clock.removed
    stage = o.journey.stage
    starts = _stage_starts(o, new)
    shifts = _timeline_shifts(o, old, new)
    for planned in PLANNED_STAGES:
        if planned in passed:
            continue
        old_plans, new_plans = _by_id(old.stage(planned).tasks), _by_id(new.stage(planned).tasks)
        for task_id, plan in new_plans.items():
            task = tasks.get(task_id)
            if task is None:
                changes.append(_add(o, planned, plan, starts[planned], now))
                continue
            if task.done_at is not None:
                continue
            changes += _retitle(task, plan)
            own = plan.due - old_plans[task_id].due if task_id in old_plans else timedelta(0)
            shift = own + (timedelta(0) if planned is stage else shifts[planned])
            if shift:
                changes.append(_move(task, shift, now, f"task {task_id}"))
        for task_id in old_plans.keys() - new_plans.keys():
            task = tasks.get(task_id)
            if task is None:
                continue
            if task.done_at is not None:
                changes.append(
                    Change(
                        kind=ChangeKind.KEPT,
                        subject=f"task {task_id}",
                        note="no longer in the playbook, but done: it stays done",
                    )
                )
                continue
            removed[task_id] = tasks.pop(task_id)
            changes.append(
                Change(
                    kind=ChangeKind.REMOVED,
                    subject=f"task {task_id}",
                    before_at=task.due_at,
                    note="open: it leaves the checklist and its reminders stop",
                )
            )
    return changes


def _add(o: Onboarding, stage: Stage, plan: TaskPlan, start: datetime, now: datetime) -> Change:
    """A task the new version adds; one removed by an earlier migration comes back as it was
    (its reminders counted: a rollback sends nothing twice)."""
    current = stage is o.journey.stage
    task = o.state.clock.removed.pop(plan.id, None) or TaskStatus(
        id=plan.id,
        title=plan.title,
        owner=plan.owner,
        stage=stage,
        required=plan.required,
        due_at=start + plan.due,
    )
    task.active_from = o.journey.entered_at if current and task.done_at is None else None
    change = Change(kind=ChangeKind.ADDED, subject=f"task {plan.id}", after=task.title)
    if task.done_at is None and task.due_at <= now:
        change.note = f"its date, {task.due_at:%Y-%m-%d %H:%M} UTC, has passed: due a day from now"
        task.due_at = now + NOTICE
    change.after_at = task.due_at
    o.state.clock.tasks[plan.id] = task
    return change


def _retitle(task: TaskStatus, plan: TaskPlan) -> list[Change]:
    changes = []
    for field in ("title", "owner", "required"):
        before, after = getattr(task, field), getattr(plan, field)
        if before != after:
            setattr(task, field, after)
            changes.append(
                Change(
                    kind=ChangeKind.CHANGED,
                    subject=f"task {task.id} {field}",
                    before=str(before),
                    after=str(after),
                )
            )
    return changes


def _move(step: TaskStatus, shift: timedelta, now: datetime, subject: str) -> Change:
    """Move an open step's date by `shift`, never into the past."""
    before = step.due_at
    after = before + shift
    note = None
    if after <= now:
        note = f"{after:%Y-%m-%d %H:%M} UTC would be past: a day from now instead"
        after = now + NOTICE
    step.due_at = after
    return Change(
        kind=ChangeKind.MOVED,
        subject=subject,
        before_at=before,
        after_at=after,
        shift=after - before,
        note=note,
    )


def _stage_starts(o: Onboarding, new: Playbook) -> dict[Stage, datetime]:
    """When each planned stage starts: the current one when it was entered, later ones when
    the one before ends on the new plan (its deadline as it stands, moves and pauses kept)."""
    stage, clock = o.journey.stage, o.state.clock.stage_clock
    starts: dict[Stage, datetime] = {}
    start = o.journey.entered_at
    for planned in JOURNEY[JOURNEY.index(stage) :]:
        if planned in PLANNED_STAGES:
            starts[planned] = start
        if planned is stage and clock is not None:
            start = clock.due_at
        elif planned in new.stages:
            start += new.stage(planned).deadline
    return starts


def _timeline_shifts(o: Onboarding, old: Playbook, new: Playbook) -> dict[Stage, timedelta]:
    """How far each later stage's start moves: the sum of the deadline changes before it."""
    stage = o.journey.stage
    shifts, shift = {}, timedelta(0)
    for planned in JOURNEY[JOURNEY.index(stage) :]:
        shifts[planned] = shift
        if planned in PLANNED_STAGES or planned is stage:
            shift += new.stage(planned).deadline - old.stage(planned).deadline
    return shifts


def _by_id(tasks: list[TaskPlan]) -> dict[str, TaskPlan]:
    return {task.id: task for task in tasks}


# --- reminders and escalations ----------------------------------------------------------------


def _next_reminders(o: Onboarding) -> dict[str, datetime | None]:
    return {_step_name(s): o.checklist.next_reminder(s) for s in o.checklist.open_steps()}


def _reminders_moved(o: Onboarding, before: dict[str, datetime | None]) -> list[Change]:
    changes = []
    for step in o.checklist.open_steps():
        name = _step_name(step)
        if name not in before:
            continue  # added: its change says when it is due
        after = o.checklist.next_reminder(step)
        if after != before[name]:
            changes.append(
                Change(
                    kind=ChangeKind.REMINDER,
                    subject=f"{name} next reminder",
                    before_at=before[name],
                    after_at=after,
                    note=None if after else "no more reminders under the new policy",
                )
            )
    return changes


def _step_name(step: TaskStatus) -> str:
    return f"stage {step.stage} deadline" if step.id == "stage" else f"task {step.id}"


def _escalation_level(o: Onboarding, new: Playbook) -> list[Change]:
    """An open escalation above the new ladder's top stays at the top."""
    escalation = o.risk.open_escalation()
    top = len(new.escalation.ladder) - 1
    if escalation is None or escalation.level <= top:
        return []
    before, escalation.level = escalation.level, top
    return [
        Change(
            kind=ChangeKind.CHANGED,
            subject=f"escalation #{escalation.number} level",
            before=str(before),
            after=str(top),
            note="the new ladder is shorter: it stays at its top",
        )
    ]


# --- settings -------------------------------------------------------------------------------


def _settings(old: Playbook, new: Playbook) -> list[Change]:
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    for name in SETTINGS:
        before |= _flat(name, getattr(old, name))
        after |= _flat(name, getattr(new, name))
    return [
        Change(kind=ChangeKind.CHANGED, subject=key, before=before.get(key), after=after.get(key))
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]


def _flat(prefix: str, value: Any) -> dict[str, str]:
    """A setting as dotted keys and the words a playbook uses (`14d`, `csm (2d), cs_lead …`)."""
    if isinstance(value, BaseModel):
        flat: dict[str, str] = {}
        for field in type(value).model_fields:
            flat |= _flat(f"{prefix}.{field}", getattr(value, field))
        return flat
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat |= _flat(f"{prefix}.{key}", item)
        return flat
    return {prefix: _words(value)}


def _words(value: Any) -> str:
    if isinstance(value, timedelta):
        return spoken(value)
    if isinstance(value, LadderStep):
        who = f"{value.role} {value.name}" if value.name else value.role
        return f"{who} (ack within {spoken(value.ack_within)})"
    if isinstance(value, list):
        return ", ".join(_words(item) for item in value) or "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
