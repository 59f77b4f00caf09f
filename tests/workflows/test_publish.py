"""What the onboarding shows, without a server: search attributes, the run's details in the
Web UI and the `status` query's answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.activities import Effects
from models.journey import Cancel, CancelReason, CsmRef, Milestone, Stage
from tests.conftest import deal, onboarding_input
from workflows.contract import (
    SA_CSM,
    SA_ESCALATED,
    SA_NEXT_DEADLINE,
    SA_OVERDUE,
    SA_RISK,
    SA_STAGE,
    SA_TOUCH_MODEL,
)
from workflows.onboarding.core import Onboarding, new_state
from workflows.onboarding.publish import Publication, changed_attributes, publication, status

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MEI = CsmRef(id="csm-007", name="Mei Tanaka", email="mei.tanaka@example.com")


def started(**changes: object) -> Onboarding:
    """A new onboarding in Depart, its entry actions done at T0."""
    request = deal("acme", **changes)
    o = Onboarding(onboarding_input(request), new_state(request, T0), "onboarding-acme.0000aaaa")
    o.enter(T0, Effects(account_id="acme", at=T0))
    return o


def in_kickoff() -> Onboarding:
    o = started(contract_signed_at=T0)
    effects = Effects(account_id="acme", at=T0)
    o.advance(T0)
    o.csm.assigned(MEI)
    o.enter(T0, effects)
    o.advance(T0)
    o.enter(T0, effects)
    return o


def updates(before: Publication | None, after: Publication) -> dict[str, object]:
    return {update.key.name: update.value for update in changed_attributes(before, after)}


def details(o: Onboarding, now: datetime) -> list[str]:
    return publication(o, now).details.split("  \n")


def test_search_attributes_of_a_fresh_onboarding() -> None:
    assert publication(started(), T0).attributes == {
        SA_STAGE.name: "depart",
        SA_TOUCH_MODEL.name: "high",
        SA_RISK.name: "low",
        SA_OVERDUE.name: False,
        SA_ESCALATED.name: False,
        SA_CSM.name: None,
        SA_NEXT_DEADLINE.name: T0 + 14 * DAY,  # the deal's signature
    }


def test_every_attribute_is_set_the_first_time_unset_where_there_is_no_value() -> None:
    first = publication(started(), T0)
    assert updates(None, first) == first.attributes


def test_only_what_changed_is_updated_afterwards() -> None:
    o = started()
    before = publication(o, T0)
    assert updates(before, publication(o, T0 + DAY)) == {}
    assert updates(before, publication(o, T0 + 15 * DAY)) == {SA_OVERDUE.name: True}


def test_a_new_stage_and_csm_update_their_attributes() -> None:
    o = in_kickoff()
    before = publication(started(), T0)
    assert updates(before, publication(o, T0)) == {
        SA_STAGE.name: "kickoff",
        SA_CSM.name: "csm-007",
        SA_NEXT_DEADLINE.name: T0 + 7 * DAY,  # kickoff-call (academy access is done)
    }


def test_details_say_where_the_onboarding_is() -> None:
    o = started(contract_signed_at=T0)
    lines = details(o, T0 + DAY)
    assert lines[:5] == [
        "**Stage:** depart",
        "**Next deadline:** 2026-03-16 09:00 UTC",
        "**CSM:** not assigned yet",
        "**Overdue:** nothing",
        "**Clock:** running",
    ]
    assert lines[-4:] == [
        "- contract-signed: done 2026-03-02 09:00 UTC",
        "- kickoff-held: open",
        "- integration-done: open",
        "- review-passed: open",
    ]


def test_details_say_overdue_and_paused_and_a_paused_clock_has_nothing_overdue() -> None:
    o = in_kickoff()
    assert "**Overdue:** kickoff-call" in details(o, T0 + 8 * DAY)
    o.checklist.pause(T0 + 8 * DAY)
    lines = details(o, T0 + 9 * DAY)
    assert "**Clock:** paused" in lines
    assert "**Overdue:** nothing" in lines  # paused time does not count against deadlines


def test_an_ended_onboarding_shows_a_stopped_clock_no_deadline_and_nothing_overdue() -> None:
    o = in_kickoff()
    now = T0 + 20 * DAY
    assert status(o, now).overdue == ["stage", "kickoff-call"]
    o.journey.cancel(Cancel(reason=CancelReason.PRICE, by="csm-007"), now)
    o.end(now, Effects(account_id="acme", at=now))

    answer = status(o, now)
    assert (answer.stage, answer.next_deadline, answer.overdue) == (Stage.CANCELLED, None, [])
    assert answer.closes_at is None
    assert "**Clock:** stopped (cancelled)" in details(o, now)
    shown = publication(o, now).attributes
    assert (shown[SA_NEXT_DEADLINE.name], shown[SA_OVERDUE.name]) == (None, False)


def test_status_reads_a_fresh_risk_and_the_pending_milestones() -> None:
    o = started(contract_signed_at=T0)
    o.milestone_reported(Milestone.KICKOFF_HELD, "calendar", None, T0 + DAY, None)
    answer = status(o, T0 + 8 * DAY)
    assert answer.pending_milestones == [Milestone.KICKOFF_HELD]
    assert answer.risk.reasons == ["no engagement for 8 days"]  # not reassessed yet
    assert publication(o, T0 + 8 * DAY).attributes[SA_RISK.name] == "low"
