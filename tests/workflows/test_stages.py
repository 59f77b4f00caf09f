"""The journey's stages and milestones, without a server: what is kept, what is refused, how
outside timestamps are bounded, when the onboarding lapses and what its row says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.journey import Cancel, CancelReason, Milestone, Stage
from tests.conftest import deal, onboarding_input
from workflows.onboarding.core import new_state
from workflows.onboarding.stages import Journey, bound, check_moment

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
PLAYBOOK = onboarding_input(deal("acme")).playbook  # lapse_after 14d


def journey(at: datetime = T0) -> Journey:
    """A fresh onboarding in Depart, started at `at`, contract not yet signed."""
    return Journey(new_state(deal("acme"), at).journey, PLAYBOOK, "acme")


def walk(j: Journey, to: Stage, now: datetime) -> None:
    """Record each stage's milestone and move on until `to`."""
    while j.stage is not to:
        if (milestone := j.waits_for()) is not None:
            j.record(milestone, "csm-007", now, now)
        j.advance(now)


# --- milestones -------------------------------------------------------------------------------


def test_a_milestone_is_kept_once() -> None:
    j = journey()
    first = j.record(Milestone.CONTRACT_SIGNED, "ae-001", T0 + DAY, T0 + DAY)
    assert first is not None and first.by == "ae-001"
    assert j.record(Milestone.CONTRACT_SIGNED, "crm", T0 + 2 * DAY, T0 + 2 * DAY) is None
    assert j.state.milestones[Milestone.CONTRACT_SIGNED] == first


def test_a_milestone_is_a_sign_of_life() -> None:
    j = journey()
    j.record(Milestone.CONTRACT_SIGNED, "ae-001", T0, T0 + 3 * DAY)
    assert j.state.last_activity_at == T0 + 3 * DAY


def test_an_early_milestone_is_pending_until_its_stage() -> None:
    j = journey()
    j.record(Milestone.CONTRACT_SIGNED, "ae-001", T0, T0)
    j.record(Milestone.KICKOFF_HELD, "calendar", T0, T0)
    assert j.pending_milestones() == [Milestone.KICKOFF_HELD]
    assert not j.applied(Milestone.KICKOFF_HELD)

    walk(j, Stage.KICKOFF, T0 + DAY)
    assert j.pending_milestones() == []
    assert j.settled() and not j.applied(Milestone.KICKOFF_HELD)

    j.advance(T0 + DAY)
    assert j.applied(Milestone.KICKOFF_HELD)


def test_a_stage_without_a_milestone_is_settled_at_once() -> None:
    j = journey()
    walk(j, Stage.HANDOFF, T0)
    assert j.waits_for() is None and j.settled()


def test_the_csm_cannot_record_a_milestone_twice() -> None:
    j = journey()
    j.record(Milestone.CONTRACT_SIGNED, "ae-001", T0, T0)
    with pytest.raises(ValueError) as refused:
        j.check_milestone(Milestone.CONTRACT_SIGNED, None, T0 + DAY)
    assert str(refused.value) == (
        "contract-signed was already recorded for acme at 2026-03-02 09:00 UTC by ae-001"
    )


def test_the_csm_cannot_record_a_milestone_before_the_ones_it_follows() -> None:
    with pytest.raises(ValueError) as refused:
        journey().check_milestone(Milestone.INTEGRATION_DONE, None, T0 + DAY)
    assert str(refused.value) == (
        "acme is in stage depart; integration-done needs contract-signed, kickoff-held first"
    )


def test_the_csm_cannot_date_a_milestone_in_the_future_beyond_the_clock_skew() -> None:
    j = journey()
    now = T0 + DAY
    j.check_milestone(Milestone.CONTRACT_SIGNED, now + 4 * MINUTE, now)  # clocks drift
    with pytest.raises(ValueError, match=r"at 2026-03-03T09:06:00\+00:00 is in the future"):
        j.check_milestone(Milestone.CONTRACT_SIGNED, now + 6 * MINUTE, now)


def test_the_csm_cannot_date_a_milestone_before_what_it_follows() -> None:
    j = journey()
    j.record(Milestone.CONTRACT_SIGNED, "ae-001", T0 + 5 * DAY, T0 + 5 * DAY)
    with pytest.raises(ValueError) as refused:
        j.check_milestone(Milestone.KICKOFF_HELD, T0 + 4 * DAY, T0 + 6 * DAY)
    assert str(refused.value) == (
        "at 2026-03-06T09:00:00+00:00 is before what it follows (2026-03-07T09:00:00+00:00)"
    )
    j.check_milestone(Milestone.KICKOFF_HELD, T0 + 5 * DAY, T0 + 6 * DAY)


def test_the_csm_cannot_date_the_first_milestone_before_the_onboarding_started() -> None:
    with pytest.raises(ValueError, match="is before what it follows"):
        journey().check_milestone(Milestone.CONTRACT_SIGNED, T0 - DAY, T0 + DAY)


# --- outside timestamps -----------------------------------------------------------------------


NOW = T0 + 10 * DAY
EARLIEST = T0 + 2 * DAY


@pytest.mark.parametrize(
    ("at", "taken", "changed"),
    [
        (None, NOW, None),
        (NOW - DAY, NOW - DAY, None),
        (NOW + 4 * MINUTE, NOW, None),  # within the skew: not in the future, just drift
        (
            NOW + 6 * MINUTE,
            NOW,
            "2026-03-12T09:06:00+00:00 is in the future; taken as 2026-03-12T09:00:00+00:00",
        ),
        (
            EARLIEST - DAY,
            EARLIEST,
            "2026-03-03T09:00:00+00:00 is before 2026-03-04T09:00:00+00:00; taken as that",
        ),
    ],
    ids=["missing", "good", "skew", "future", "too-early"],
)
def test_bound_makes_an_outside_timestamp_safe_and_says_what_it_changed(
    at: datetime | None, taken: datetime, changed: str | None
) -> None:
    assert bound(at, EARLIEST, NOW) == (taken, changed)


def test_check_moment_refuses_what_bound_would_change() -> None:
    check_moment(None, EARLIEST, NOW, "the start")
    check_moment(NOW - DAY, EARLIEST, NOW, "the start")
    with pytest.raises(ValueError, match="is in the future"):
        check_moment(NOW + 6 * MINUTE, EARLIEST, NOW, "the start")
    with pytest.raises(ValueError, match=r"is before the start \(2026-03-04T09:00:00\+00:00\)"):
        check_moment(EARLIEST - DAY, EARLIEST, NOW, "the start")


# --- endings ----------------------------------------------------------------------------------


def test_a_run_being_cancelled_refuses_further_actions() -> None:
    j = journey()
    j.cancel(Cancel(reason=CancelReason.PRICE, by="csm-007"), T0 + DAY)
    assert j.ending and not j.ended
    with pytest.raises(ValueError, match=r"^the onboarding of acme is being cancelled \(depart\)$"):
        j.check_running()
    with pytest.raises(ValueError, match="is being cancelled"):
        j.check_cancel()
    with pytest.raises(ValueError, match="is being cancelled"):
        j.check_milestone(Milestone.CONTRACT_SIGNED, None, T0 + DAY)


def test_an_ended_run_refuses_further_actions() -> None:
    j = journey()
    j.lapse(T0 + 60 * DAY)
    with pytest.raises(ValueError, match=r"^the onboarding of acme has ended \(lapsed\)$"):
        j.check_running()
    with pytest.raises(ValueError, match="has ended"):
        j.check_cancel()


def test_the_onboarding_cannot_be_cancelled_once_it_is_finishing() -> None:
    j = journey()
    walk(j, Stage.EXPAND, T0)
    j.check_running()
    with pytest.raises(ValueError, match="end the everboarding instead"):
        j.check_cancel()


def test_a_cancellation_remembers_the_stage_it_came_in() -> None:
    j = journey()
    walk(j, Stage.ADOPT, T0)
    cancellation = j.cancel(Cancel(reason=CancelReason.NO_VALUE, by="csm-007"), T0 + DAY)
    assert (cancellation.stage, cancellation.at, cancellation.by) == (
        Stage.ADOPT,
        T0 + DAY,
        "csm-007",
    )


# --- when it lapses ---------------------------------------------------------------------------


def test_it_closes_when_overdue_past_every_allowance_plus_the_grace() -> None:
    j = journey()
    overdue_from = T0 + 40 * DAY
    assert j.closes_at(overdue_from, paused=False) == overdue_from + 14 * DAY


def test_a_late_sign_of_life_pushes_the_close_back() -> None:
    j = journey()
    j.sign_of_life(T0 + 50 * DAY)
    j.sign_of_life(T0 + 45 * DAY)  # an older report changes nothing
    assert j.closes_at(T0 + 40 * DAY, paused=False) == T0 + 64 * DAY


def test_it_never_closes_while_paused_without_a_deadline_or_when_ending() -> None:
    j = journey()
    assert j.closes_at(T0 + 40 * DAY, paused=True) is None
    assert j.closes_at(None, paused=False) is None
    j.cancel(Cancel(reason=CancelReason.OTHER, by="csm-007"), T0)
    assert j.closes_at(T0 + 40 * DAY, paused=False) is None


# --- what the row says ------------------------------------------------------------------------


def test_the_row_of_a_running_onboarding_shows_applied_milestones_and_when_it_lapses() -> None:
    j = journey()
    walk(j, Stage.ADOPT, T0 + DAY)
    j.record(Milestone.INTEGRATION_DONE, "se", T0 + 2 * DAY, T0 + 2 * DAY)  # Adopt not left yet
    row = j.row(T0 + 90 * DAY)
    assert row.stage is Stage.ADOPT
    assert (row.contract_signed_at, row.kickoff_at, row.first_value_at) == (
        T0 + DAY,
        T0 + DAY,
        None,
    )
    assert row.lapses_at == T0 + 90 * DAY
    assert row.closed_at is None


def test_the_row_of_a_completed_onboarding() -> None:
    j = journey()
    walk(j, Stage.COMPLETED, T0 + 80 * DAY)
    row = j.row(T0 + 90 * DAY)
    assert (row.completed_at, row.closed_at, row.first_value_at) == (
        T0 + 80 * DAY,
        T0 + 80 * DAY,
        T0 + 80 * DAY,
    )
    assert (row.lapses_at, row.cancellation, row.lapsed_at) == (None, None, None)


def test_the_row_of_a_cancelled_onboarding() -> None:
    j = journey()
    cancellation = j.cancel(Cancel(reason=CancelReason.PRICE, by="csm-007"), T0 + DAY)
    assert j.row(T0 + 40 * DAY).cancellation is None  # not carried out yet
    j.let_go(T0 + DAY + MINUTE)
    row = j.row(T0 + 40 * DAY)
    assert (row.stage, row.cancellation, row.closed_at) == (
        Stage.CANCELLED,
        cancellation,
        T0 + DAY + MINUTE,
    )
    assert (row.lapses_at, row.completed_at, row.lapsed_at) == (None, None, None)


def test_the_row_of_a_lapsed_onboarding() -> None:
    j = journey()
    j.lapse(T0 + 60 * DAY)
    row = j.row(T0 + 40 * DAY)
    assert (row.stage, row.lapsed_at, row.closed_at) == (
        Stage.LAPSED,
        T0 + 60 * DAY,
        T0 + 60 * DAY,
    )
    assert (row.lapses_at, row.completed_at, row.cancellation) == (None, None, None)


def test_a_milestone_recorded_for_a_stage_never_reached_stays_out_of_the_row() -> None:
    j = journey()
    walk(j, Stage.KICKOFF, T0)
    j.record(Milestone.INTEGRATION_DONE, "se", T0 + DAY, T0 + DAY)  # early: Adopt not reached
    j.cancel(Cancel(reason=CancelReason.PRICE, by="csm-007"), T0 + 2 * DAY)
    j.let_go(T0 + 2 * DAY)
    row = j.row(None)
    assert (row.kickoff_at, row.first_value_at) == (None, None)
