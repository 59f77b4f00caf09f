"""Adopting a new version of the playbook in a running onboarding, under stated rules (README:
*Changing a playbook for running onboardings*):

- stages the customer already passed are not re-planned: what the new version changes there
  is refused;
- a task added to the current stage is due its `due` after the stage was entered, one added to
  a later stage on the planned timeline (re-dated when its stage starts); a task the new
  version drops stops reminding if it is open, and stays done if it is done; a task moved to
  another stage goes with it;
- a moved `due` or stage deadline moves the date by the difference (extensions and pauses
  kept), and never into the past: an open step's date that would be past is a day from now
  (`NOTICE`), and one already due by then that the new version would bring forward stays;
- reminders already sent are never sent again: each step's count goes on, and its next
  reminder is planned from the last one under the new reminder policy;
- settings (reminders, risk, escalation, channels, extension and lapse limits, learning,
  everboarding) apply from now on; the current stage keeps its automation (its entry is done).

Plain code: `adopt` changes an onboarding's state and says what it did; a preview is `adopt`
on a copy, at the same moment (the caller's `as_of`), so the preview and the apply cannot
disagree about the same state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from models.journey import JOURNEY, Stage, TaskStatus
from models.migration import Change, ChangeKind
from models.playbook import LadderStep, Playbook, StagePlan, TaskPlan, spoken
from workflows.onboarding.checklist import PLANNED_STAGES, STAGE_STEP, new_step

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


def adopt(o: Onboarding, new: Playbook, now: datetime) -> list[Change]:
    """Change `o`'s state for `new` (resolved for the run), go on with `new` (what was refused
    kept as it was), and return the changes."""
    old, stage = o.playbook, o.journey.stage
    # A stage whose entry actions have not run yet (the roster is still answering) starts on
    # the new version: it counts as ahead, not as under way.
    current = stage if o.state.journey.entered else None
    position = JOURNEY.index(stage)
    passed = [s for s in JOURNEY[:position] if s.value in old.stages]
    ahead = [s for s in JOURNEY[position + (current is not None) :] if s.value in new.stages]
    reminders_before = _next_reminders(o)
    changes: list[Change] = []
    stages = dict(new.stages)
    for name in passed:
        stages[name] = _keep_passed(name, old.stage(name), new.stage(name), changes)
    if current is not None:
        stages[current] = _keep_automation(current, old.stage(current), new.stage(current), changes)
        changes += _current_rules(o, old, new, now)
    changes += [
        Change(
            kind=ChangeKind.CHANGED, subject=f"stage {name}", note=f"{said} (from when it starts)"
        )
        for name in ahead
        for said in _rule_differences(old.stage(name), new.stage(name))
    ]
    adopted = new.model_copy(update={"stages": stages})
    if _checklist_made(o):
        changes += _tasks(o, old, adopted, passed, current, now)
    else:
        changes += _plans_ahead(old, adopted)
    changes += _settings(old, new)
    changes += _escalation(o, adopted, now)
    o.use_playbook(adopted)
    changes += _reminders_moved(o, reminders_before)
    return changes


def _checklist_made(o: Onboarding) -> bool:
    """The checklist is made when kickoff is entered (`Checklist.plan`)."""
    kickoff = JOURNEY.index(Stage.KICKOFF)
    position = JOURNEY.index(o.journey.stage)
    return position > kickoff or (position == kickoff and o.state.journey.entered)


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
                before=_words(old.automated),
                after=_words(new.automated),
                note=f"{stage} is under way: its automation applies from the next onboarding",
            )
        )
    return new.model_copy(update={"automated": old.automated})


def _current_rules(o: Onboarding, old: Playbook, new: Playbook, now: datetime) -> list[Change]:
    """The current stage's deadline (its clock, or, where it has none, when the onboarding
    would lapse) and whether its last task completes it."""
    stage = o.journey.stage
    before, after = old.stage(stage), new.stage(stage)
    changes = []
    shift = after.deadline - before.deadline
    clock = o.state.clock.stage_clock
    if shift and clock is not None and clock.done_at is None:
        changes += _move(clock, shift, now, f"stage {stage} deadline")
    elif shift:
        changes.append(
            Change(
                kind=ChangeKind.CHANGED,
                subject=f"stage {stage} deadline",
                before=spoken(before.deadline),
                after=spoken(after.deadline),
                note="it has no deadline of its own: this moves when the onboarding would lapse",
            )
        )
    if before.tasks_complete_stage != after.tasks_complete_stage:
        changes.append(
            Change(
                kind=ChangeKind.CHANGED,
                subject=f"stage {stage} tasks_complete_stage",
                before=_words(before.tasks_complete_stage),
                after=_words(after.tasks_complete_stage),
            )
        )
    return changes


def _rule_differences(old: StagePlan, new: StagePlan) -> list[str]:
    said = []
    if old.deadline != new.deadline:
        said.append(f"deadline {spoken(old.deadline)} → {spoken(new.deadline)}")
    for field in ("automated", "tasks_complete_stage"):
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            said.append(f"{field} {_words(before)} → {_words(after)}")
    return said


def _task_differences(old: StagePlan, new: StagePlan) -> list[str]:
    old_tasks, new_tasks = _by_id(old.tasks), _by_id(new.tasks)
    said = [f"task {t} added" for t in new_tasks if t not in old_tasks]
    said += [f"task {t} removed" for t in old_tasks if t not in new_tasks]
    said += [
        f"task {t} changed" for t in new_tasks if t in old_tasks and old_tasks[t] != new_tasks[t]
    ]
    return said


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
    o: Onboarding,
    old: Playbook,
    new: Playbook,
    passed: list[Stage],
    current: Stage | None,
    now: datetime,
) -> list[Change]:
    changes: list[Change] = []
    tasks = o.state.clock.tasks
    starts = _stage_starts(o, new, current)
    shifts = _timeline_shifts(o, old, new)
    wanted = {task.id for stage in PLANNED_STAGES for task in new.stage(stage).tasks}
    for planned in PLANNED_STAGES:
        if planned in passed:
            continue
        active = planned is current
        old_plans, new_plans = _by_id(old.stage(planned).tasks), _by_id(new.stage(planned).tasks)
        for task_id, plan in new_plans.items():
            task = tasks.get(task_id)
            if task is None:
                changes.append(_add(o, planned, plan, starts[planned], active, now))
                continue
            if task.done_at is not None or task.stage in passed:
                continue  # done stays done; a passed stage's task stays there (refused above)
            changes += _retitle(task, plan)
            if task.stage is not planned:
                changes += _restage(o, task, planned, plan, starts[planned], active, now)
                continue
            own = plan.due - old_plans[task_id].due if task_id in old_plans else timedelta(0)
            shift = own if active else own + shifts[planned]
            if shift:
                changes += _move(task, shift, now, f"task {task_id}", clamp=active)
        for task_id in old_plans:  # in the file's order: the same changes on every worker
            task = tasks.get(task_id)
            if task_id in wanted or task is None:
                continue  # kept (or moved to another stage)
            if task.done_at is not None:
                changes.append(
                    Change(
                        kind=ChangeKind.KEPT,
                        subject=f"task {task_id}",
                        note="no longer in the playbook, but done: it stays done",
                    )
                )
                continue
            o.state.clock.removed[task_id] = tasks.pop(task_id)
            changes.append(
                Change(
                    kind=ChangeKind.REMOVED,
                    subject=f"task {task_id}",
                    before_at=task.due_at,
                    note="open: it leaves the checklist and its reminders stop",
                )
            )
    return changes


def _add(
    o: Onboarding, stage: Stage, plan: TaskPlan, start: datetime, active: bool, now: datetime
) -> Change:
    """A task the new version adds. One an earlier migration removed comes back with its
    reminders counted (a rollback sends nothing twice), dated as a new one would be."""
    restored = o.state.clock.removed.pop(plan.id, None)
    task = restored or new_step(plan, stage, start)
    notes = []
    if restored is not None:
        task.title, task.owner, task.required, task.stage = (
            plan.title,
            plan.owner,
            plan.required,
            stage,
        )
        task.due_at = start + plan.due + task.extended_by
        notes.append(f"back as it was ({task.reminders_sent} reminder(s) sent before)")
    task.active_from = o.journey.entered_at if active else None
    if active and task.due_at <= now:
        notes.append(f"its date, {task.due_at:%Y-%m-%d %H:%M} UTC, has passed: due a day from now")
        task.due_at = now + NOTICE
    if not active:
        notes.append(f"re-dated when {stage} starts")
    o.state.clock.tasks[plan.id] = task
    return Change(
        kind=ChangeKind.ADDED,
        subject=f"task {plan.id}",
        after=task.title,
        after_at=task.due_at,
        note="; ".join(notes) or None,
    )


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
                    before=_words(before),
                    after=_words(after),
                )
            )
    return changes


def _restage(
    o: Onboarding,
    task: TaskStatus,
    stage: Stage,
    plan: TaskPlan,
    start: datetime,
    active: bool,
    now: datetime,
) -> list[Change]:
    """An open task the new version puts in another stage: dated as that stage's own."""
    moved = Change(
        kind=ChangeKind.CHANGED, subject=f"task {task.id} stage", before=task.stage, after=stage
    )
    task.stage = stage
    task.active_from = o.journey.entered_at if active else None
    due = start + plan.due + task.extended_by
    return [moved, *_move(task, due - task.due_at, now, f"task {task.id}", clamp=active)]


def _move(
    step: TaskStatus, shift: timedelta, now: datetime, subject: str, clamp: bool = True
) -> list[Change]:
    """Move an open step's date by `shift`, never into the past (`clamp`: a step of a stage
    not started yet is re-dated when it starts, so its planned date may be anything)."""
    before = step.due_at
    after = before + shift
    note = None
    if clamp and after <= now:
        if shift < timedelta(0) and before <= now + NOTICE:
            return [
                Change(
                    kind=ChangeKind.KEPT,
                    subject=subject,
                    before_at=before,
                    note=f"the new version would bring it forward to {after:%Y-%m-%d %H:%M} "
                    "UTC, in the past: it stays where it is",
                )
            ]
        note = f"{after:%Y-%m-%d %H:%M} UTC would be past: a day from now instead"
        after = now + NOTICE
    if after == before:
        return []
    step.due_at = after
    return [
        Change(
            kind=ChangeKind.MOVED,
            subject=subject,
            before_at=before,
            after_at=after,
            shift=after - before,
            note=note,
        )
    ]


def _stage_starts(o: Onboarding, new: Playbook, current: Stage | None) -> dict[Stage, datetime]:
    """When each planned stage from the current one on starts: the current one when it was
    entered, later ones when the one before ends on the new plan (the current deadline as it
    stands, moves and pauses kept)."""
    clock = o.state.clock.stage_clock
    starts: dict[Stage, datetime] = {}
    start = o.journey.entered_at
    for stage in JOURNEY[JOURNEY.index(o.journey.stage) :]:
        if stage in PLANNED_STAGES:
            starts[stage] = start
        if stage is current and clock is not None:
            start = clock.due_at
        elif stage.value in new.stages:
            start += new.stage(stage).deadline
    return starts


def _timeline_shifts(o: Onboarding, old: Playbook, new: Playbook) -> dict[Stage, timedelta]:
    """How far each stage's planned start moves: the deadline changes of the stages before it,
    from the current one on."""
    shifts, shift = {}, timedelta(0)
    for stage in JOURNEY[JOURNEY.index(o.journey.stage) :]:
        shifts[stage] = shift
        if stage.value in old.stages and stage.value in new.stages:
            shift += new.stage(stage).deadline - old.stage(stage).deadline
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
    return f"stage {step.stage} deadline" if step.id == STAGE_STEP else f"task {step.id}"


def _escalation(o: Onboarding, new: Playbook, now: datetime) -> list[Change]:
    """The open escalation on the new ladder: no higher than its top rung, climbing on from
    where it is if the new ladder goes further, no more if it is at the top."""
    escalation = o.risk.open_escalation()
    if escalation is None:
        return []
    ladder = new.escalation.ladder
    before = _rung(escalation.level, escalation.next_level_at)
    escalation.level = min(escalation.level, len(ladder) - 1)
    if escalation.level == len(ladder) - 1:
        escalation.next_level_at = None
    elif escalation.next_level_at is None:
        escalation.next_level_at = now + ladder[escalation.level].ack_within
    after = _rung(escalation.level, escalation.next_level_at)
    if after == before:
        return []
    return [
        Change(
            kind=ChangeKind.CHANGED,
            subject=f"escalation #{escalation.number}",
            before=before,
            after=after,
        )
    ]


def _rung(level: int, next_level_at: datetime | None) -> str:
    climbs = f"climbs at {next_level_at:%Y-%m-%d %H:%M} UTC" if next_level_at else "at the top"
    return f"rung {level + 1}, {climbs}"


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
    if isinstance(value, BaseModel) and not isinstance(value, LadderStep):
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
