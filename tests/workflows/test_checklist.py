"""The checklist and its clock, without a server: due dates, reminders, extensions, pauses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.journey import ExtendDeadline, Stage, TouchModel
from models.onboarding import ClockState
from tests.conftest import deal, onboarding_input
from workflows.onboarding.checklist import Checklist

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
# The standard playbook, high touch: kickoff 10d (kickoff-call 7d, academy-access 3d), adopt
# 45d, review 14d; reminders 2d before, at due, then every 3d up to 3 times; extensions 30d.
PLAYBOOK = onboarding_input(deal("acme")).playbook


def planned(at: datetime = T0) -> Checklist:
    """The kickoff's checklist as the customer first sees it (academy access is given at
    kickoff, so that task is done), without the stage's own deadline."""
    checklist = Checklist(ClockState(), PLAYBOOK)
    checklist.plan(at)
    checklist.finish("academy-access", "academy", at)
    return checklist


def kicked_off(at: datetime = T0) -> Checklist:
    """Kickoff entered at `at`: its deadline plus its checklist."""
    checklist = Checklist(ClockState(), PLAYBOOK)
    checklist.start_stage(Stage.KICKOFF, at)
    checklist.plan(at)
    checklist.finish("academy-access", "academy", at)
    return checklist


def due_in(checklist: Checklist, start: datetime = T0) -> dict[str, timedelta]:
    return {task.id: task.due_at - start for task in checklist.state.tasks.values()}


def look(checklist: Checklist, now: datetime) -> list[str]:
    return [reminder.key for reminder in checklist.due_reminders(now)]


def extend(task_id: str | None = "kickoff-call", **change: object) -> ExtendDeadline:
    return ExtendDeadline.model_validate(
        {"task_id": task_id, "reason": "holiday", "by": "csm-007"} | change
    )


# --- the plan ---------------------------------------------------------------------------------


def test_the_kickoff_plan_dates_every_task_on_the_planned_timeline() -> None:
    checklist = planned()
    # Each stage starts when the one before it would end: adopt on day 10, review on day 55.
    assert due_in(checklist) == {
        "kickoff-call": 7 * DAY,
        "academy-access": 3 * DAY,
        "add-users": 17 * DAY,
        "configure": 31 * DAY,
        "integration-test": 50 * DAY,
        "open-questions": 65 * DAY,
    }
    assert [step.id for step in checklist.open_steps()] == ["kickoff-call"]


def test_a_stage_tasks_are_redated_from_the_day_the_stage_really_starts() -> None:
    checklist = planned()
    adopt_entered = T0 + 20 * DAY  # kickoff took twice as long as planned
    checklist.start_stage(Stage.ADOPT, adopt_entered)
    assert due_in(checklist, adopt_entered) == {
        "kickoff-call": -13 * DAY,  # still open from kickoff: its date stays
        "academy-access": -17 * DAY,  # done at kickoff: its date stays
        "add-users": 7 * DAY,
        "configure": 21 * DAY,
        "integration-test": 40 * DAY,
        "open-questions": 45 * DAY,  # review's task still on the planned timeline
    }
    assert [step.id for step in checklist.open_steps()] == [
        "stage",
        "kickoff-call",
        "add-users",
        "configure",
        "integration-test",
    ]
    assert checklist.state.stage_clock is not None
    assert checklist.state.stage_clock.due_at == adopt_entered + 45 * DAY


def test_an_extension_given_before_its_stage_is_kept_when_the_stage_starts() -> None:
    checklist = planned()
    checklist.extend(extend("add-users", extend_by=5 * DAY), T0, "acme", Stage.KICKOFF)
    checklist.start_stage(Stage.ADOPT, T0 + 20 * DAY)
    assert checklist.state.tasks["add-users"].due_at == T0 + 32 * DAY


# --- reminders --------------------------------------------------------------------------------


def test_reminders_go_out_before_at_and_after_the_due_time_then_stop() -> None:
    checklist = kicked_off()
    sent = {day: keys for day in range(30) if (keys := look(checklist, T0 + day * DAY))}
    call, deadline = "kickoff:task:kickoff-call:reminder:", "kickoff:deadline:reminder:"
    # kickoff-call is due on day 7, the stage on day 10.
    assert sent == {
        5: [call + "1"],
        7: [call + "2"],
        8: [deadline + "1"],
        10: [deadline + "2", call + "3"],
        13: [deadline + "3", call + "4"],
        16: [deadline + "4", call + "5"],
        19: [deadline + "5"],
    }


def test_a_late_look_sends_one_reminder_per_step_not_a_burst() -> None:
    checklist = kicked_off()
    # Day 12: kickoff-call's reminders of days 5, 7 and 10 and the stage's of 8 and 10 passed.
    assert look(checklist, T0 + 12 * DAY) == [
        "kickoff:deadline:reminder:1",
        "kickoff:task:kickoff-call:reminder:1",
    ]
    assert look(checklist, T0 + 12 * DAY) == []
    assert look(checklist, T0 + 13 * DAY) == [
        "kickoff:deadline:reminder:2",
        "kickoff:task:kickoff-call:reminder:2",
    ]


def test_the_stage_deadline_reminder_names_its_owner() -> None:
    checklist = Checklist(ClockState(), PLAYBOOK)
    checklist.start_stage(Stage.ADOPT, T0)
    [reminder] = checklist.due_reminders(T0 + 43 * DAY)
    assert (reminder.key, reminder.owner) == ("adopt:deadline:reminder:1", "customer")


def test_no_reminder_once_the_task_is_done() -> None:
    checklist = planned()
    assert look(checklist, T0 + 5 * DAY) == ["kickoff:task:kickoff-call:reminder:1"]
    checklist.finish("kickoff-call", "csm-007", T0 + 6 * DAY)
    assert [look(checklist, T0 + day * DAY) for day in range(6, 30)] == [[]] * 24
    assert checklist.next_wake(T0 + 6 * DAY) is None


def test_no_reminders_while_paused() -> None:
    checklist = kicked_off()
    checklist.pause(T0 + 4 * DAY)
    assert look(checklist, T0 + 12 * DAY) == []
    assert checklist.next_wake(T0 + 12 * DAY) is None


# --- extensions -------------------------------------------------------------------------------


def test_an_extension_moves_the_due_time_and_the_reminders_re_plan_from_where_they_stood() -> None:
    checklist = planned()
    assert look(checklist, T0 + 5 * DAY) == ["kickoff:task:kickoff-call:reminder:1"]

    moved = checklist.extend(extend(extend_by=7 * DAY), T0 + 6 * DAY, "acme", Stage.KICKOFF)

    assert (moved.due_at, moved.extended_by) == (T0 + 14 * DAY, 7 * DAY)
    sent = {day: keys for day in range(6, 40) if (keys := look(checklist, T0 + day * DAY))}
    # The old due date (day 7) passes silently; the count goes on from the first reminder.
    assert sent == {
        12: ["kickoff:task:kickoff-call:reminder:2"],
        14: ["kickoff:task:kickoff-call:reminder:3"],
        17: ["kickoff:task:kickoff-call:reminder:4"],
        20: ["kickoff:task:kickoff-call:reminder:5"],
        23: ["kickoff:task:kickoff-call:reminder:6"],
    }


def test_the_stage_deadline_can_be_moved_to_a_given_time() -> None:
    checklist = kicked_off()
    update = extend(None, due_at=T0 + 12 * DAY)
    moved = checklist.extend(update, T0 + DAY, "acme", Stage.KICKOFF)
    assert moved is checklist.state.stage_clock
    assert checklist.next_deadline() == T0 + 7 * DAY  # kickoff-call comes first still
    assert moved.due_at == T0 + 12 * DAY


@pytest.mark.parametrize(
    ("update", "now", "refusal"),
    [
        (extend(due_at=T0 + 2 * DAY), T0 + 3 * DAY, "2026-03-04 09:00 UTC is in the past"),
        (
            extend(due_at=T0 + 6 * DAY),
            T0,
            "2026-03-08 09:00 UTC is not later than the current deadline 2026-03-09 09:00 UTC",
        ),
        (
            extend(extend_by=31 * DAY),
            T0,
            "the playbook allows moving this deadline by 30 days in total; 30 days is left",
        ),
        (extend("academy-access", extend_by=DAY), T0, "task academy-access is already done"),
        (
            extend("kick-off", extend_by=DAY),
            T0,
            "unknown task 'kick-off' for acme; tasks: kickoff-call, academy-access, add-users, "
            "configure, integration-test, open-questions",
        ),
        (extend(None, extend_by=DAY), T0, "stage kickoff has no deadline to move"),
    ],
    ids=["past", "not-later", "beyond-max", "done", "unknown", "no-stage-deadline"],
)
def test_an_extension_is_refused(update: ExtendDeadline, now: datetime, refusal: str) -> None:
    checklist = planned()  # no stage deadline here
    before = checklist.state.model_copy(deep=True)
    with pytest.raises(ValueError) as refused:
        checklist.extend(update, now, "acme", Stage.KICKOFF)
    assert str(refused.value) == refusal
    assert checklist.state == before


def test_extensions_add_up_against_the_playbook_maximum() -> None:
    checklist = planned()
    checklist.extend(extend(extend_by=20 * DAY), T0, "acme", Stage.KICKOFF)
    with pytest.raises(ValueError, match="; 10 days is left"):
        checklist.check_extension(extend(extend_by=11 * DAY), T0, "acme", Stage.KICKOFF)
    moved = checklist.extend(extend(extend_by=10 * DAY), T0, "acme", Stage.KICKOFF)
    assert moved.due_at == T0 + 37 * DAY


def test_an_unknown_task_before_kickoff_says_the_checklist_comes_at_kickoff() -> None:
    checklist = Checklist(ClockState(), PLAYBOOK)
    with pytest.raises(ValueError, match=r"tasks: none yet \(the checklist is made at kickoff\)"):
        checklist.find("kickoff-call", "acme")


# --- the paused clock -------------------------------------------------------------------------


def test_resume_moves_every_open_due_time_by_the_time_paused() -> None:
    checklist = kicked_off()
    before = due_in(checklist)
    checklist.pause(T0 + 2 * DAY)

    paused_at, paused_for = checklist.resume(T0 + 5 * DAY)

    assert (paused_at, paused_for) == (T0 + 2 * DAY, 3 * DAY)
    after = due_in(checklist)
    assert after == {
        task: due if task == "academy-access" else due + 3 * DAY for task, due in before.items()
    }
    assert checklist.state.stage_clock is not None
    assert checklist.state.stage_clock.due_at == T0 + 13 * DAY
    assert not checklist.paused


def test_reminders_after_a_pause_come_as_late_as_the_pause_was_long() -> None:
    checklist = planned()
    checklist.pause(T0 + 2 * DAY)
    checklist.resume(T0 + 5 * DAY)
    assert look(checklist, T0 + 7 * DAY) == []
    assert look(checklist, T0 + 8 * DAY) == ["kickoff:task:kickoff-call:reminder:1"]


def test_a_stage_entered_while_paused_gets_only_the_paused_time_it_lived_through() -> None:
    checklist = Checklist(ClockState(), PLAYBOOK)
    checklist.pause(T0)
    checklist.start_stage(Stage.KICKOFF, T0 + 2 * DAY)  # its milestone came while paused
    checklist.resume(T0 + 3 * DAY)
    assert checklist.state.stage_clock is not None
    assert checklist.state.stage_clock.due_at == T0 + 2 * DAY + 10 * DAY + 1 * DAY


# --- when the stage lapses, when to wake ------------------------------------------------------


def test_lapses_at_ignores_extensions_but_follows_pauses() -> None:
    checklist = kicked_off()
    assert checklist.lapses_at(Stage.KICKOFF, T0) == T0 + 10 * DAY + 30 * DAY

    checklist.extend(extend(None, extend_by=5 * DAY), T0, "acme", Stage.KICKOFF)
    assert checklist.lapses_at(Stage.KICKOFF, T0) == T0 + 40 * DAY

    checklist.pause(T0 + DAY)
    checklist.resume(T0 + 3 * DAY)
    assert checklist.lapses_at(Stage.KICKOFF, T0) == T0 + 42 * DAY


def test_lapses_at_for_an_automated_stage_and_none_for_a_stage_without_a_deadline() -> None:
    tech = onboarding_input(deal("acme", touch_model=TouchModel.TECH)).playbook
    checklist = Checklist(ClockState(), tech)
    checklist.start_stage(Stage.KICKOFF, T0)  # automated for tech touch: no deadline of its own
    assert checklist.state.stage_clock is None
    assert checklist.lapses_at(Stage.KICKOFF, T0) == T0 + 3 * DAY + 30 * DAY
    checklist.start_stage(Stage.HANDOFF, T0)
    assert checklist.lapses_at(Stage.HANDOFF, T0) is None


def test_next_wake_is_the_next_reminder_or_deadline() -> None:
    checklist = planned()  # kickoff-call: reminders on days 5, 7, 10, 13 and 16; due on day 7
    assert checklist.next_wake(T0) == T0 + 5 * DAY
    look(checklist, T0 + 5 * DAY)
    assert checklist.next_wake(T0 + 5 * DAY) == T0 + 7 * DAY
    look(checklist, T0 + 16 * DAY)
    assert checklist.next_wake(T0 + 16 * DAY) is None  # reminders used up, deadline passed


def test_next_wake_counts_a_deadline_without_a_reminder_at_it() -> None:
    quiet = PLAYBOOK.model_copy(
        update={"reminders": PLAYBOOK.reminders.model_copy(update={"at_due": False})}
    )
    checklist = Checklist(ClockState(), quiet)
    checklist.plan(T0)
    checklist.finish("academy-access", "academy", T0)
    look(checklist, T0 + 5 * DAY)
    assert checklist.next_wake(T0 + 5 * DAY) == T0 + 7 * DAY  # the deadline passing raises risk


def test_stop_leaves_nothing_open() -> None:
    checklist = kicked_off()
    checklist.stop()
    assert checklist.open_steps() == []
    assert checklist.next_deadline() is None
    assert checklist.overdue(T0 + 60 * DAY) == []
