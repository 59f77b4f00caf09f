"""Adopting a new version of the playbook in a running onboarding, without a server: what the
preview says and what the apply does, under the rules of workflows/onboarding/migration.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from models.journey import Cancel, CancelReason, Stage
from models.migration import AdoptPlaybook, ChangeKind, MigrationPlan, PlaybookOffer
from models.playbook import PlaybookFile, load_playbook
from tests.workflows.test_core import DAY, T0, batch, drive, onboarding
from workflows.onboarding.core import Onboarding

STANDARD = load_playbook(Path(__file__).parents[2] / "playbooks", "standard")


def edited(change: Any) -> PlaybookOffer:
    """The standard playbook with `change(data)` applied to its data, as a file would say."""
    data = STANDARD.model_dump()
    change(data)
    return PlaybookOffer(name="standard", file=PlaybookFile.model_validate(data))


def adopt_tasks(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["stages"]["adopt"]["tasks"]


def add_sso_and_give_configure_a_week_more(data: dict[str, Any]) -> None:
    tasks = adopt_tasks(data)
    tasks.append(
        {"id": "connect-sso", "title": "Connect SSO", "owner": "customer", "due": DAY * 10}
    )
    next(t for t in tasks if t["id"] == "configure")["due"] = DAY * 28


def in_adopt(days_in: int = 0) -> tuple[Onboarding, Any]:
    """Acme in Adopt since T0 + 1 day, `add-users` done, looked at `days_in` days later."""
    o = onboarding()
    drive(o, Stage.ADOPT, T0 + DAY, batch())
    o.task_reported("add-users", "kenji", None, T0 + 2 * DAY)
    return o, T0 + DAY + days_in * DAY


def kinds(plan: MigrationPlan) -> dict[str, ChangeKind]:
    return {change.subject: change.kind for change in plan.changes}


def test_the_playbooks_version_is_its_content_not_its_comments() -> None:
    again = PlaybookFile.model_validate(STANDARD.model_dump())
    assert again.version() == STANDARD.version() and len(STANDARD.version()) == 12
    assert edited(add_sso_and_give_configure_a_week_more).file.version() != STANDARD.version()
    assert onboarding().playbook.version == STANDARD.version()


def test_the_preview_shows_the_added_task_and_the_moved_deadline_and_changes_nothing() -> None:
    o, now = in_adopt(days_in=3)
    before = o.state.model_copy(deep=True)
    plan = o.playbook_changes(edited(add_sso_and_give_configure_a_week_more), now)
    assert o.state == before and o.playbook.version == STANDARD.version()
    added = next(c for c in plan.changes if c.subject == "task connect-sso")
    moved = next(c for c in plan.changes if c.subject == "task configure")
    assert added.kind is ChangeKind.ADDED and added.after_at == T0 + DAY + 10 * DAY
    assert moved.kind is ChangeKind.MOVED and moved.shift == 7 * DAY
    assert moved.after_at == T0 + DAY + 28 * DAY
    assert not plan.refused and plan.from_version == STANDARD.version() != plan.to_version


def test_apply_does_what_the_preview_said_keeps_done_work_done_and_dates_the_new_task() -> None:
    o, now = in_adopt(days_in=3)
    offer = edited(add_sso_and_give_configure_a_week_more)
    preview = o.playbook_changes(offer, now)
    applied = o.adopt_playbook(offer, now)
    assert applied.changes == preview.changes and applied.digest == preview.digest
    tasks = o.state.clock.tasks
    assert tasks["add-users"].done_at == T0 + 2 * DAY
    assert tasks["connect-sso"].due_at == T0 + 11 * DAY
    assert tasks["connect-sso"].active_from == T0 + DAY  # its reminders run from now on
    assert tasks["configure"].due_at == T0 + 29 * DAY
    assert o.playbook.version == offer.file.version()
    # Its first reminder: two days before it is due (the playbook's `before`).
    assert o.checklist.next_reminder(tasks["connect-sso"]) == T0 + 9 * DAY
    # The database is told: the new task's row, the moved date.
    recorded = o.unrecorded()["tasks"]
    assert {t.id for t in recorded} >= {"connect-sso", "configure"}  # type: ignore[attr-defined]


def test_a_removed_open_task_stops_reminding_and_leaves_the_database() -> None:
    o, now = in_adopt(days_in=3)
    o.records.recorded(batch().model_copy(update={"tasks": o.checklist.tasks()}))

    def drop_configure(data: dict[str, Any]) -> None:
        data["stages"]["adopt"]["tasks"] = [t for t in adopt_tasks(data) if t["id"] != "configure"]

    plan = o.adopt_playbook(edited(drop_configure), now)
    assert kinds(plan)["task configure"] is ChangeKind.REMOVED
    assert "configure" not in {step.id for step in o.checklist.open_steps()}
    assert o.unrecorded()["removed_tasks"] == ["configure"]
    # Twenty days on, nothing is due for it: no reminder names it.
    reminders = o.checklist.due_reminders(now + 30 * DAY)
    assert "configure" not in {r.step.id for r in reminders}


def test_a_removed_task_already_done_stays_done() -> None:
    o, now = in_adopt()

    def drop_add_users(data: dict[str, Any]) -> None:
        data["stages"]["adopt"]["tasks"] = [t for t in adopt_tasks(data) if t["id"] != "add-users"]

    plan = o.adopt_playbook(edited(drop_add_users), now)
    assert kinds(plan)["task add-users"] is ChangeKind.KEPT
    assert o.state.clock.tasks["add-users"].done_at == T0 + 2 * DAY


def test_a_deadline_the_new_version_would_put_in_the_past_is_a_day_from_now() -> None:
    o, now = in_adopt(days_in=10)

    def configure_in_two_days(data: dict[str, Any]) -> None:
        next(t for t in adopt_tasks(data) if t["id"] == "configure")["due"] = 2 * DAY

    preview = o.playbook_changes(edited(configure_in_two_days), now)
    [moved] = [c for c in preview.changes if c.subject == "task configure"]
    assert moved.after_at == now + DAY and moved.note and "would be past" in moved.note
    o.adopt_playbook(edited(configure_in_two_days), now)
    assert o.state.clock.tasks["configure"].due_at == now + DAY


def test_the_stage_deadline_moves_and_later_stages_move_with_it() -> None:
    o, now = in_adopt()
    review_due = o.state.clock.tasks["open-questions"].due_at

    def longer_adopt(data: dict[str, Any]) -> None:
        data["stages"]["adopt"]["deadline"] = 52 * DAY

    plan = o.adopt_playbook(edited(longer_adopt), now)
    changes = {c.subject: c for c in plan.changes}
    assert changes["stage adopt deadline"].shift == 7 * DAY
    assert changes["task open-questions"].shift == 7 * DAY
    assert o.state.clock.tasks["open-questions"].due_at == review_due + 7 * DAY


def test_what_a_passed_stage_would_change_is_refused_and_kept_as_it_was() -> None:
    o, now = in_adopt()

    def another_kickoff_task(data: dict[str, Any]) -> None:
        data["stages"]["kickoff"]["tasks"].append({"id": "late", "title": "Late", "due": DAY})

    plan = o.adopt_playbook(edited(another_kickoff_task), now)
    [refused] = plan.refused
    assert refused.subject == "stage kickoff" and "already passed: task late added" in str(
        refused.note
    )
    assert "late" not in o.state.clock.tasks
    assert [t.id for t in o.playbook.stage("kickoff").tasks] == ["kickoff-call", "academy-access"]


def test_settings_apply_from_now_on_and_reminders_are_replanned_from_where_they_stood() -> None:
    o, now = in_adopt()

    def sooner(data: dict[str, Any]) -> None:
        data["risk"]["quiet_high"] = 10 * DAY
        data["reminders"]["before"] = [5 * DAY]

    plan = o.adopt_playbook(edited(sooner), now)
    changes = {c.subject: c for c in plan.changes}
    assert (changes["risk.quiet_high"].before, changes["risk.quiet_high"].after) == ("14d", "10d")
    reminder = changes["task configure next reminder"]
    assert reminder.kind is ChangeKind.REMINDER
    assert reminder.after_at == reminder.before_at - 3 * DAY  # type: ignore[operator]
    assert o.playbook.risk.quiet_high == 10 * DAY


def test_migrating_back_restores_a_removed_task_with_its_reminders_counted() -> None:
    o, now = in_adopt(days_in=20)
    reminded = o.checklist.due_reminders(now)
    assert "configure" in {r.step.id for r in reminded}
    sent = o.state.clock.tasks["configure"].reminders_sent

    def drop_configure(data: dict[str, Any]) -> None:
        data["stages"]["adopt"]["tasks"] = [t for t in adopt_tasks(data) if t["id"] != "configure"]

    o.adopt_playbook(edited(drop_configure), now)
    back = o.adopt_playbook(PlaybookOffer(name="standard", file=STANDARD), now + DAY)
    assert kinds(back)["task configure"] is ChangeKind.ADDED
    assert o.state.clock.tasks["configure"].reminders_sent == sent
    assert o.playbook.version == STANDARD.version()


def test_before_kickoff_the_changes_are_planned_when_the_checklist_is_made() -> None:
    o = onboarding()
    plan = o.adopt_playbook(edited(add_sso_and_give_configure_a_week_more), T0)
    assert {c.note for c in plan.changes} >= {
        "task connect-sso added (planned at kickoff)",
        "task configure changed (planned at kickoff)",
    }
    drive(o, Stage.ADOPT, T0 + DAY, batch())
    assert o.state.clock.tasks["connect-sso"].due_at == T0 + DAY + 10 * DAY


def test_the_same_version_changes_nothing() -> None:
    o, now = in_adopt()
    plan = o.adopt_playbook(PlaybookOffer(name="standard", file=STANDARD), now)
    assert plan.up_to_date and not plan.changes


def test_an_ended_run_another_playbook_or_a_changed_run_is_refused() -> None:
    o, now = in_adopt()
    offer = edited(add_sso_and_give_configure_a_week_more)
    digest = o.playbook_changes(offer, now).digest
    with pytest.raises(ValueError, match="runs playbook 'standard', not 'demo'"):
        o.check_adopt(AdoptPlaybook(name="demo", file=offer.file, by="ops"), now)
    o.task_reported("configure", "kenji", None, now)  # changed since the preview
    with pytest.raises(ValueError, match="changed since the preview"):
        o.check_adopt(AdoptPlaybook(**offer.model_dump(), by="ops", expect=digest), now)
    o.journey.cancel(Cancel(reason=CancelReason.OTHER, by="csm-007"), now)
    with pytest.raises(ValueError, match="is being cancelled"):
        o.check_adopt(AdoptPlaybook(**offer.model_dump(), by="ops"), now)


def test_a_shorter_ladder_is_a_changed_setting() -> None:
    o, now = in_adopt()

    def csm_only(data: dict[str, Any]) -> None:
        data["escalation"]["ladder"] = data["escalation"]["ladder"][:1]

    plan = o.adopt_playbook(edited(csm_only), now)
    assert kinds(plan)["escalation.ladder"] is ChangeKind.CHANGED
    assert timedelta(0) < o.playbook.escalation.ladder[0].ack_within
