"""Adopting a new version of the playbook in a running onboarding, without a server: what the
preview says and what the apply does, under the rules of workflows/onboarding/migration.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from models.journey import Cancel, CancelReason, Escalation, ExtendDeadline, Stage
from models.migration import AdoptPlaybook, ChangeKind, MigrationPlan, PlaybookOffer
from models.playbook import PlaybookFile, load_playbook
from tests.workflows.test_core import DAY, MEI_REF, T0, batch, drive, onboarding
from workflows.onboarding import versions
from workflows.onboarding.core import Onboarding

ROOT = Path(__file__).parents[2]
STANDARD = load_playbook(ROOT / "playbooks", "standard")
Edit = Callable[[dict[str, Any]], None]


def offer(change: Edit | None, at: datetime) -> PlaybookOffer:
    """The standard playbook with `change(data)` applied to its data, as a file would say,
    offered as of `at`."""
    data = STANDARD.model_dump()
    if change is not None:
        change(data)
    return PlaybookOffer(name="standard", file=PlaybookFile.model_validate(data), as_of=at)


def adopt(o: Onboarding, change: Edit | None, at: datetime) -> MigrationPlan:
    """Apply as `starter.py migrate --apply` does: the preview's digest checked, then adopted."""
    update = AdoptPlaybook(**offer(change, at).model_dump(), by="ops-1")
    update.expect = versions.preview(o, update).digest
    versions.check(o, update, at)
    return versions.adopt(o, update, at)


def tasks(data: dict[str, Any], stage: str = "adopt") -> list[dict[str, Any]]:
    return data["stages"][stage]["tasks"]


def task(data: dict[str, Any], task_id: str, stage: str = "adopt") -> dict[str, Any]:
    return next(t for t in tasks(data, stage) if t["id"] == task_id)


def drop(task_id: str, stage: str = "adopt") -> Edit:
    def change(data: dict[str, Any]) -> None:
        data["stages"][stage]["tasks"] = [t for t in tasks(data, stage) if t["id"] != task_id]

    return change


def sso_and_a_week_more(data: dict[str, Any]) -> None:
    tasks(data).append({"id": "connect-sso", "title": "Connect SSO", "due": DAY * 10})
    task(data, "configure")["due"] = DAY * 28


def in_adopt(days_in: int = 0) -> tuple[Onboarding, datetime]:
    """Acme in Adopt since T0 + 1 day, `add-users` done, looked at `days_in` days later."""
    o = onboarding()
    drive(o, Stage.ADOPT, T0 + DAY, batch())
    o.task_reported("add-users", "kenji", None, T0 + 2 * DAY)
    return o, T0 + DAY + days_in * DAY


def changes(plan: MigrationPlan) -> dict[str, Any]:
    return {change.subject: change for change in plan.changes}


def test_the_playbooks_version_is_its_content_not_its_comments_or_table_order() -> None:
    text = (ROOT / "playbooks" / "standard.toml").read_text()
    moved = text.replace("[stages.depart]", "[stages.depart]\n# a comment")
    first, rest = moved.split("[touch_models.low.stages.kickoff]", 1)
    reordered = PlaybookFile.model_validate(__import__("tomllib").loads(first))
    # The tables of one stage kept, the stages and touch models in another order.
    data = reordered.model_dump()
    data["stages"] = dict(reversed(list(data["stages"].items())))
    again = PlaybookFile.model_validate(
        data | {"touch_models": STANDARD.model_dump()["touch_models"]}
    )
    assert again.version() == STANDARD.version() and len(STANDARD.version()) == 12
    assert offer(sso_and_a_week_more, T0).file.version() != STANDARD.version()
    assert onboarding().playbook.version == STANDARD.version()


def test_the_preview_shows_the_added_task_and_the_moved_deadline_and_changes_nothing() -> None:
    o, now = in_adopt(days_in=3)
    before = o.state.model_copy(deep=True)
    plan = versions.preview(o, offer(sso_and_a_week_more, now))
    assert o.state == before and o.playbook.version == STANDARD.version()
    said = changes(plan)
    assert said["task connect-sso"].kind is ChangeKind.ADDED
    assert said["task connect-sso"].after_at == T0 + 11 * DAY
    assert (
        said["task configure"].kind is ChangeKind.MOVED and said["task configure"].shift == 7 * DAY
    )
    assert said["task configure"].after_at == T0 + 29 * DAY
    assert not plan.refused and plan.from_version == STANDARD.version() != plan.to_version


def test_apply_does_what_the_preview_said_keeps_done_work_done_and_dates_the_new_task() -> None:
    o, now = in_adopt(days_in=3)
    preview = versions.preview(o, offer(sso_and_a_week_more, now))
    applied = adopt(o, sso_and_a_week_more, now)
    assert applied.changes == preview.changes and applied.digest == preview.digest
    clock = o.state.clock.tasks
    assert clock["add-users"].done_at == T0 + 2 * DAY
    assert clock["connect-sso"].due_at == T0 + 11 * DAY
    assert clock["connect-sso"].active_from == T0 + DAY  # its reminders run from now on
    assert clock["configure"].due_at == T0 + 29 * DAY
    assert o.playbook.version == offer(sso_and_a_week_more, now).file.version()
    assert o.checklist.next_reminder(clock["connect-sso"]) == T0 + 9 * DAY
    recorded = o.unrecorded()["tasks"]
    assert {t.id for t in recorded} >= {"connect-sso", "configure"}  # type: ignore[attr-defined]
    [note] = o.state.playbook.adoptions
    assert (note.number, note.by, note.to_version) == (1, "ops-1", applied.to_version)


def test_a_removed_open_task_stops_reminding_and_leaves_the_database() -> None:
    o, now = in_adopt(days_in=3)
    o.records.recorded(batch().model_copy(update={"tasks": o.checklist.tasks()}))
    plan = adopt(o, drop("configure"), now)
    assert changes(plan)["task configure"].kind is ChangeKind.REMOVED
    assert "configure" not in {step.id for step in o.checklist.open_steps()}
    assert o.unrecorded()["removed_tasks"] == ["configure"]
    reminders = o.checklist.due_reminders(now + 30 * DAY)
    assert "configure" not in {r.step.id for r in reminders}


def test_tasks_removed_together_are_listed_in_the_files_order() -> None:
    o, now = in_adopt(days_in=3)

    def drop_two(data: dict[str, Any]) -> None:
        drop("integration-test")(data)
        drop("configure")(data)

    plan = adopt(o, drop_two, now)
    removed = [c.subject for c in plan.changes if c.kind is ChangeKind.REMOVED]
    assert removed == ["task configure", "task integration-test"]


def test_a_removed_task_already_done_stays_done() -> None:
    o, now = in_adopt()
    plan = adopt(o, drop("add-users"), now)
    assert changes(plan)["task add-users"].kind is ChangeKind.KEPT
    assert o.state.clock.tasks["add-users"].done_at == T0 + 2 * DAY


def test_a_deadline_the_new_version_would_put_in_the_past_is_a_day_from_now() -> None:
    o, now = in_adopt(days_in=10)

    def configure_in_two_days(data: dict[str, Any]) -> None:
        task(data, "configure")["due"] = 2 * DAY

    preview = versions.preview(o, offer(configure_in_two_days, now))
    moved = changes(preview)["task configure"]
    assert moved.after_at == now + DAY and moved.note and "would be past" in moved.note
    adopt(o, configure_in_two_days, now)
    assert o.state.clock.tasks["configure"].due_at == now + DAY


def test_a_task_added_with_a_date_already_past_is_due_a_day_from_now() -> None:
    o, now = in_adopt(days_in=12)
    plan = adopt(o, sso_and_a_week_more, now)
    added = changes(plan)["task connect-sso"]
    assert added.after_at == now + DAY and "has passed" in str(added.note)
    assert o.state.clock.tasks["connect-sso"].due_at == now + DAY


def test_a_step_already_due_is_not_brought_forward_into_the_past() -> None:
    o, now = in_adopt(days_in=50)  # adopt's 45 days are over: the stage is overdue
    due = o.state.clock.stage_clock.due_at  # type: ignore[union-attr]

    def shorter_adopt(data: dict[str, Any]) -> None:
        data["stages"]["adopt"]["deadline"] = 40 * DAY

    plan = adopt(o, shorter_adopt, now)
    kept = changes(plan)["stage adopt deadline"]
    assert kept.kind is ChangeKind.KEPT and "stays where it is" in str(kept.note)
    assert o.state.clock.stage_clock.due_at == due  # type: ignore[union-attr]
    assert "stage" in o.checklist.overdue(now)


def test_an_extension_stays_applied_when_the_due_date_moves() -> None:
    o, now = in_adopt(days_in=3)
    o.extend(ExtendDeadline(task_id="configure", extend_by=3 * DAY, reason="x", by="csm"), now)
    adopt(o, sso_and_a_week_more, now)
    assert o.state.clock.tasks["configure"].due_at == T0 + DAY + (21 + 3 + 7) * DAY


def test_the_stage_deadline_moves_and_later_stages_move_with_it() -> None:
    o, now = in_adopt()
    review_due = o.state.clock.tasks["open-questions"].due_at

    def longer_adopt(data: dict[str, Any]) -> None:
        data["stages"]["adopt"]["deadline"] = 52 * DAY

    said = changes(adopt(o, longer_adopt, now))
    assert said["stage adopt deadline"].shift == 7 * DAY
    assert said["task open-questions"].shift == 7 * DAY
    assert o.state.clock.tasks["open-questions"].due_at == review_due + 7 * DAY


def test_what_a_passed_stage_would_change_is_refused_and_kept_as_it_was() -> None:
    o, now = in_adopt()

    def another_kickoff_task(data: dict[str, Any]) -> None:
        tasks(data, "kickoff").append({"id": "late", "title": "Late", "due": DAY})

    [refused] = adopt(o, another_kickoff_task, now).refused
    assert refused.subject == "stage kickoff"
    assert "already passed: task late added" in str(refused.note)
    assert "late" not in o.state.clock.tasks
    assert [t.id for t in o.playbook.stage("kickoff").tasks] == ["kickoff-call", "academy-access"]


def test_the_current_stage_keeps_its_automation() -> None:
    o, now = in_adopt()

    def automated_adopt(data: dict[str, Any]) -> None:
        data["stages"]["adopt"]["automated"] = True
        data["stages"]["adopt"]["tasks_complete_stage"] = True

    said = changes(adopt(o, automated_adopt, now))
    assert said["stage adopt automated"].kind is ChangeKind.REFUSED
    assert said["stage adopt tasks_complete_stage"].kind is ChangeKind.CHANGED
    assert not o.playbook.stage("adopt").automated
    assert o.playbook.stage("adopt").tasks_complete_stage


def test_a_retitled_task_is_retitled_on_the_checklist_and_in_the_database() -> None:
    o, now = in_adopt()
    o.records.recorded(batch().model_copy(update={"tasks": o.checklist.tasks()}))

    def retitle(data: dict[str, Any]) -> None:
        task(data, "configure")["title"] = "Set up your workspace"

    said = changes(adopt(o, retitle, now))
    assert said["task configure title"].after == "Set up your workspace"
    assert o.state.clock.tasks["configure"].title == "Set up your workspace"
    [row] = [t for t in o.unrecorded()["tasks"] if t.id == "configure"]  # type: ignore[attr-defined]
    assert row.title == "Set up your workspace"


def test_a_task_moved_to_a_later_stage_goes_with_it() -> None:
    o, now = in_adopt()

    def integration_in_review(data: dict[str, Any]) -> None:
        moving = task(data, "integration-test")
        drop("integration-test")(data)
        tasks(data, "review").append(moving | {"due": 5 * DAY})

    said = changes(adopt(o, integration_in_review, now))
    assert (
        said["task integration-test stage"].before,
        said["task integration-test stage"].after,
    ) == ("adopt", "review")
    moved = o.state.clock.tasks["integration-test"]
    assert moved.stage is Stage.REVIEW and moved.active_from is None  # no reminders until then
    assert "integration-test" not in {s.id for s in o.checklist.open_steps()}


def test_settings_apply_from_now_on_and_reminders_are_replanned_from_where_they_stood() -> None:
    o, now = in_adopt()

    def sooner(data: dict[str, Any]) -> None:
        data["risk"]["quiet_high"] = 10 * DAY
        data["reminders"]["before"] = [5 * DAY]

    said = changes(adopt(o, sooner, now))
    assert (said["risk.quiet_high"].before, said["risk.quiet_high"].after) == ("14d", "10d")
    reminder = said["task configure next reminder"]
    assert reminder.kind is ChangeKind.REMINDER
    assert reminder.after_at == reminder.before_at - 3 * DAY
    assert o.playbook.risk.quiet_high == 10 * DAY


def test_migrating_back_restores_a_removed_task_with_its_reminders_counted() -> None:
    o, now = in_adopt(days_in=20)
    assert "configure" in {r.step.id for r in o.checklist.due_reminders(now)}
    sent = o.state.clock.tasks["configure"].reminders_sent
    due = o.state.clock.tasks["configure"].due_at
    adopt(o, drop("configure"), now)
    back = adopt(o, None, now + timedelta(hours=1))
    assert changes(back)["task configure"].kind is ChangeKind.ADDED
    assert o.state.clock.tasks["configure"].reminders_sent == sent
    assert o.state.clock.tasks["configure"].due_at == due
    assert o.playbook.version == STANDARD.version()
    # Forward again: a third migration, not the first one's answer again.
    again = adopt(o, drop("configure"), now + 2 * DAY)
    assert again.number == 3 and "configure" not in o.state.clock.tasks


def test_a_task_of_a_later_stage_brought_back_is_dated_from_its_stage() -> None:
    o, now = in_adopt()
    adopt(o, drop("open-questions", "review"), now)
    o.milestone_reported(o.journey.waits_for(), "test", None, now, None)  # type: ignore[arg-type]
    o.advance(now)
    o.enter(now, batch())  # Review starts without it
    adopt(o, None, now + DAY)
    assert o.state.clock.tasks["open-questions"].due_at == now + 10 * DAY


def test_an_academy_access_step_added_after_access_is_done() -> None:
    o = onboarding(touch_model="tech")
    drive(o, Stage.KICKOFF, T0, batch())
    assert "academy-access" in o.state.clock.tasks
    plan = adopt(o, None, T0)  # the tech file's kickoff: one task; now the standard's two
    assert o.state.clock.tasks["academy-access"].done_at is not None
    assert plan.number == 1


def test_before_kickoff_the_changes_are_planned_when_the_checklist_is_made() -> None:
    o = onboarding()
    plan = adopt(o, sso_and_a_week_more, T0)
    assert {c.note for c in plan.changes} >= {
        "task connect-sso added (planned at kickoff)",
        "task configure changed (planned at kickoff)",
    }
    drive(o, Stage.ADOPT, T0 + DAY, batch())
    assert o.state.clock.tasks["connect-sso"].due_at == T0 + DAY + 10 * DAY


def test_a_stage_not_entered_yet_takes_the_new_version_whole() -> None:
    o, now = in_adopt()
    o.milestone_reported(o.journey.waits_for(), "test", None, now, None)  # type: ignore[arg-type]
    o.advance(now)  # in Review, its entry actions not run yet

    def automated_review(data: dict[str, Any]) -> None:
        data["stages"]["review"]["automated"] = True

    plan = adopt(o, automated_review, now)
    assert not plan.refused and o.playbook.stage("review").automated


def test_the_same_version_changes_nothing() -> None:
    o, now = in_adopt()
    plan = adopt(o, None, now)
    assert plan.up_to_date and not plan.changes


def test_an_ended_run_another_playbook_a_stale_preview_or_a_changed_run_is_refused() -> None:
    o, now = in_adopt()
    offered = offer(sso_and_a_week_more, now)
    digest = versions.preview(o, offered).digest
    with pytest.raises(ValueError, match="runs playbook 'standard', not 'demo'"):
        versions.check(o, AdoptPlaybook(**offered.model_dump() | {"name": "demo"}, by="ops"), now)
    with pytest.raises(ValueError, match="preview it again"):
        versions.check(o, AdoptPlaybook(**offered.model_dump(), by="ops"), now + timedelta(hours=1))
    o.task_reported("configure", "kenji", None, now)  # changed since the preview
    with pytest.raises(ValueError, match="changed since the preview"):
        versions.check(o, AdoptPlaybook(**offered.model_dump(), by="ops", expect=digest), now)
    o.journey.cancel(Cancel(reason=CancelReason.OTHER, by="csm-007"), now)
    with pytest.raises(ValueError, match="is being cancelled"):
        versions.check(o, AdoptPlaybook(**offered.model_dump(), by="ops"), now)
    assert versions.preview(o, offered).ended


def test_an_open_escalation_stays_on_a_shorter_ladder_and_climbs_a_longer_one() -> None:
    o, now = in_adopt()
    o.assigned("x", o.csm.assigned(MEI_REF), batch())
    escalation = Escalation(
        number=1, raised_at=now, reasons=["quiet"], level=1, next_level_at=now + 2 * DAY
    )
    o.state.risk.escalations.append(escalation)

    def csm_and_lead(data: dict[str, Any]) -> None:
        data["escalation"]["ladder"] = data["escalation"]["ladder"][:2]

    said = changes(adopt(o, csm_and_lead, now))
    assert said["escalation #1"].after == "rung 2, at the top"
    assert o.risk.open_escalation().next_level_at is None  # type: ignore[union-attr]
    assert o.risk.climb(now + 5 * DAY, o.csm.contact) == []  # nothing left to climb: no error
    assert o.risk.open_escalation().level == 1  # type: ignore[union-attr]
    said = changes(adopt(o, None, now + DAY))  # the three rungs again: it climbs on
    assert said["escalation #1"].after == f"rung 2, climbs at {now + 3 * DAY:%Y-%m-%d %H:%M} UTC"
