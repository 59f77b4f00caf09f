"""What a batch must record, without a server: only what the database does not hold yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.activities import Effects, SupportTicketRecord
from models.journey import CsmRef, Engagement, EngagementKind, Milestone, Stage
from models.onboarding import RecordedState
from tests.conftest import deal, onboarding_input
from workflows.onboarding.core import Onboarding, new_state
from workflows.onboarding.readmodel import ReadModel

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MEI = CsmRef(id="csm-007", name="Mei Tanaka", email="mei.tanaka@example.com")


def in_kickoff() -> Onboarding:
    """Signed at the start, assigned, and in Kickoff since T0."""
    request = deal("acme", contract_signed_at=T0)
    o = Onboarding(onboarding_input(request), new_state(request, T0), "onboarding-acme.0000aaaa")
    effects = Effects(account_id="acme", at=T0)
    o.enter(T0, effects)  # depart: signed already
    o.advance(T0)
    o.csm.assigned(MEI)  # handoff
    o.enter(T0, effects)
    o.advance(T0)
    o.enter(T0, effects)
    return o


def record(o: Onboarding, now: datetime = T0) -> None:
    """Carry out a batch of everything unrecorded, as the workflow's flush does."""
    batch = Effects(account_id="acme", at=now).model_copy(update=o.unrecorded())
    o.records.recorded(batch)


def test_a_fresh_onboarding_records_its_row_visits_and_tasks_then_nothing() -> None:
    o = in_kickoff()
    first = o.unrecorded()
    assert set(first) == {"row", "visits", "tasks"}
    assert [visit.stage for visit in first["visits"]] == [
        Stage.DEPART,
        Stage.HANDOFF,
        Stage.KICKOFF,
    ]
    record(o)
    assert o.unrecorded() == {}


def test_a_changed_task_shows_up_alone() -> None:
    o = in_kickoff()
    record(o)
    o.task_done("kickoff-call", "csm-007", T0 + DAY, T0 + DAY)
    [task] = o.unrecorded()["tasks"]
    assert (task.id, task.done_at) == ("kickoff-call", T0 + DAY)


def test_a_new_stage_shows_up_as_a_changed_row_the_visit_left_and_the_visit_entered() -> None:
    o = in_kickoff()
    record(o)
    o.milestone_reported(Milestone.KICKOFF_HELD, "csm-007", None, T0 + 5 * DAY, None)
    o.advance(T0 + 5 * DAY)
    changes = o.unrecorded()
    assert changes["row"].stage is Stage.ADOPT
    assert changes["row"].kickoff_at == T0 + 5 * DAY
    assert [(v.stage, v.exited_at) for v in changes["visits"]] == [
        (Stage.KICKOFF, T0 + 5 * DAY),
        (Stage.ADOPT, None),
    ]


def test_a_changed_row_alone_shows_up() -> None:
    o = in_kickoff()
    record(o)
    o.checklist.pause(T0 + DAY)
    o.resume(T0 + 3 * DAY)  # the stage lapses two days later
    changes = o.unrecorded()
    assert set(changes) == {"row", "tasks"}
    assert changes["row"].lapses_at == T0 + 10 * DAY + 30 * DAY + 2 * DAY


def test_a_recorded_visit_is_a_copy_so_leaving_the_stage_still_shows_up() -> None:
    o = in_kickoff()
    record(o)
    o.advance(T0 + 5 * DAY)  # sets the live visit's exited_at
    assert (Stage.KICKOFF, T0 + 5 * DAY) in [
        (v.stage, v.exited_at) for v in o.unrecorded()["visits"]
    ]


def test_an_escalation_shows_up_when_raised_and_again_when_it_climbs() -> None:
    o = in_kickoff()
    record(o)
    now = T0 + 14 * DAY
    effects = Effects(account_id="acme", at=now)
    o.reassess(now, effects)
    o.escalate(now, effects)
    [raised] = o.unrecorded()["escalations"]
    assert (raised.number, raised.notified) == (1, ["csm"])
    record(o, now)
    assert "escalations" not in o.unrecorded()

    o.escalate(now + 2 * DAY, effects)  # nobody acknowledged: the lead is told
    [climbed] = o.unrecorded()["escalations"]
    assert climbed.notified == ["csm", "cs_lead"]


def test_pending_support_tickets_show_up_once_each_until_recorded() -> None:
    o = in_kickoff()
    record(o)
    for ticket, day in (("T-1", 1), ("T-1", 2), ("T-2", 3)):
        o.engaged(Engagement(kind=EngagementKind.SUPPORT_TICKET, value=ticket), T0 + day * DAY)
    assert o.unrecorded()["tickets"] == [
        SupportTicketRecord(account_id="acme", ticket="T-1", at=T0 + DAY),
        SupportTicketRecord(account_id="acme", ticket="T-2", at=T0 + 3 * DAY),
    ]
    record(o, T0 + 3 * DAY)
    assert o.unrecorded() == {}


def test_a_ticket_reported_while_a_batch_is_out_stays_pending() -> None:
    records = ReadModel(RecordedState(), "acme")
    records.ticket("T-1", T0)
    carried = SupportTicketRecord(account_id="acme", ticket="T-1", at=T0)
    sent = Effects(account_id="acme", at=T0, tickets=[carried])
    records.ticket("T-2", T0 + DAY)
    records.recorded(sent)
    assert records.state.tickets == [("T-2", T0 + DAY)]
