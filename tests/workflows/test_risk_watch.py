"""The risk watch, without a server: engagement, the champion, the switch to high touch, the
escalation ladder and paused time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.journey import (
    ChampionChanged,
    ChampionLossReason,
    Contact,
    EngagementKind,
    RiskLevel,
    TouchModel,
)
from models.onboarding import RiskState
from models.playbook import EscalationPolicy, LadderStep, Playbook
from tests.conftest import deal, onboarding_input
from workflows.onboarding.risk import RiskWatch

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
# Quiet 7d medium / 14d high; 2 / 4 unanswered reminders; escalation at high, switching low and
# tech touch to high touch; ladder: the CSM (2d to ack), Lena Park (2d), Omar Haddad.
PLAYBOOK = onboarding_input(deal("acme")).playbook
CHAMPION = deal("acme").champion
SUCCESSOR = Contact(name="Yuki Sato", email="yuki.sato@acme-logistics.example")
CSM = Contact(name="Mei Tanaka", email="mei.tanaka@example.com")
LEAD = Contact(name="Lena Park", email="lena.park@example.com")
HEAD = Contact(name="Omar Haddad", email="omar.haddad@example.com")


def watch(touch_model: TouchModel = TouchModel.HIGH, playbook: Playbook = PLAYBOOK) -> RiskWatch:
    return RiskWatch(RiskState(quiet_from=T0, champion=CHAMPION), playbook, touch_model)


def level(risk: RiskWatch, day: float) -> RiskLevel:
    return risk.assess(T0 + day * DAY).level


def at_high(risk: RiskWatch, day: float = 14) -> datetime:
    """Reassess once quiet time made the risk high; returns that moment."""
    now = T0 + day * DAY
    risk.reassess(now)
    assert risk.state.assessment.level is RiskLevel.HIGH
    return now


def told(rungs: list) -> list[tuple[str, Contact | None]]:
    return [(rung.role, rung.person) for rung in rungs]


def only(ladder: list[LadderStep]) -> Playbook:
    return PLAYBOOK.model_copy(update={"escalation": EscalationPolicy(ladder=ladder)})


# --- engagement and the champion --------------------------------------------------------------


def test_quiet_time_raises_the_risk_and_engagement_resets_it() -> None:
    risk = watch()
    assert [level(risk, day) for day in (6, 7, 14)] == [
        RiskLevel.LOW,
        RiskLevel.MEDIUM,
        RiskLevel.HIGH,
    ]
    assert risk.assess(T0 + 8 * DAY).reasons == ["no engagement for 8 days"]

    risk.engaged(EngagementKind.LOGIN, T0 + 6 * DAY)
    assert level(risk, 12) is RiskLevel.LOW
    assert level(risk, 13) is RiskLevel.MEDIUM


def test_an_older_engagement_reported_late_does_not_move_quiet_time_back() -> None:
    risk = watch()
    risk.engaged(EngagementKind.LOGIN, T0 + 6 * DAY)
    risk.engaged(EngagementKind.LOGIN, T0 + 3 * DAY)
    assert risk.state.last_engagement_at == T0 + 6 * DAY
    assert level(risk, 12) is RiskLevel.LOW
    assert risk.state.engagements == {EngagementKind.LOGIN: 2}


def test_champion_reminders_count_until_the_customer_engages() -> None:
    risk = watch()
    risk.champion_reminded(T0 + DAY)
    risk.champion_reminded(T0 + 2 * DAY)
    assert risk.assess(T0 + 2 * DAY).reasons == ["2 reminders unanswered"]

    risk.engaged(EngagementKind.FEATURE_USED, T0 + 2 * DAY - timedelta(hours=1))
    assert level(risk, 2) is RiskLevel.LOW  # only the reminder after it is unanswered

    for day in (3, 4, 5):
        risk.champion_reminded(T0 + day * DAY)
    assert level(risk, 5) is RiskLevel.HIGH


def test_champion_loss_is_high_at_once_and_recovers_once_the_new_champion_engages() -> None:
    risk = watch()
    change = ChampionChanged(reason=ChampionLossReason.LEFT, new_champion=SUCCESSOR)
    risk.champion_changed(change, T0 + DAY, T0 + DAY)

    assert risk.state.champion == SUCCESSOR
    assert risk.assess(T0 + DAY).reasons == ["champion left on 2026-03-03"]
    assert level(risk, 1) is RiskLevel.HIGH
    risk.engaged(EngagementKind.LOGIN, T0 + DAY - timedelta(hours=1))  # before the change
    assert level(risk, 2) is RiskLevel.HIGH

    risk.engaged(EngagementKind.LOGIN, T0 + 2 * DAY)
    assert level(risk, 2) is RiskLevel.LOW


def test_a_champion_lost_without_successor_stays_high_until_one_is_named_and_engages() -> None:
    risk = watch()
    risk.champion_changed(ChampionChanged(reason=ChampionLossReason.BOUNCED), T0, T0)
    risk.engaged(EngagementKind.LOGIN, T0 + DAY)
    assert level(risk, 1) is RiskLevel.HIGH

    risk.name_champion(SUCCESSOR, T0 + 2 * DAY)
    assert level(risk, 2) is RiskLevel.HIGH
    risk.engaged(EngagementKind.LOGIN, T0 + 3 * DAY)
    assert level(risk, 3) is RiskLevel.LOW
    assert risk.state.champion == SUCCESSOR


def test_the_csm_is_asked_for_a_new_champion_once_there_is_a_csm() -> None:
    risk = watch()
    risk.champion_changed(ChampionChanged(reason=ChampionLossReason.LEFT), T0, T0)
    assert not risk.ask_for_champion(None)
    assert risk.ask_for_champion(CSM)
    assert not risk.ask_for_champion(CSM)


def test_a_missed_deadline_counts_once() -> None:
    risk = watch()
    risk.missed(["kickoff:stage"])
    risk.missed(["kickoff:stage", "kickoff:kickoff-call"])
    assert risk.assess(T0).reasons == ["2 deadlines missed"]


# --- reassessing ------------------------------------------------------------------------------


def test_reassess_reports_a_level_change_once() -> None:
    risk = watch()
    changes = [risk.reassess(T0 + day * DAY)[0] for day in (1, 8, 9, 14, 15)]
    assert [change.level if change else None for change in changes] == [
        None,
        RiskLevel.MEDIUM,
        None,
        RiskLevel.HIGH,
        None,
    ]
    risk.engaged(EngagementKind.LOGIN, T0 + 15 * DAY)
    record, _ = risk.reassess(T0 + 15 * DAY)
    assert record is not None and record.level is RiskLevel.LOW


@pytest.mark.parametrize(
    ("touch_model", "switch"),
    [
        (TouchModel.LOW, True),
        (TouchModel.TECH, True),
        (TouchModel.HIGH, False),
        (TouchModel.COMMUNITY, False),
    ],
)
def test_only_low_and_tech_touch_switch_to_high_touch_at_high_risk(
    touch_model: TouchModel, switch: bool
) -> None:
    risk = watch(touch_model)
    assert risk.reassess(T0 + 13 * DAY) == (risk.state.assessment, False)  # medium
    assert risk.reassess(T0 + 14 * DAY)[1] is switch
    assert risk.state.high_touch_since == (T0 + 14 * DAY if switch else None)


def test_the_switch_to_high_touch_happens_once() -> None:
    risk = watch(TouchModel.LOW)
    assert risk.reassess(T0 + 14 * DAY)[1]
    risk.engaged(EngagementKind.LOGIN, T0 + 15 * DAY)
    assert risk.reassess(T0 + 15 * DAY)[1] is False
    assert risk.reassess(T0 + 29 * DAY) == (risk.state.assessment, False)
    assert risk.state.assessment.level is RiskLevel.HIGH
    assert risk.state.high_touch_since == T0 + 14 * DAY


def test_no_switch_where_the_playbook_does_not_ask_for_it() -> None:
    policy = PLAYBOOK.escalation.model_copy(update={"switch_to_high_touch": False})
    risk = watch(TouchModel.LOW, PLAYBOOK.model_copy(update={"escalation": policy}))
    assert risk.reassess(T0 + 14 * DAY)[1] is False


# --- the escalation ladder --------------------------------------------------------------------


def test_an_escalation_is_raised_once_when_risk_reaches_its_level() -> None:
    risk = watch()
    risk.reassess(T0 + 13 * DAY)
    assert risk.climb(T0 + 13 * DAY, CSM) == []  # medium: below the playbook's level

    now = at_high(risk)
    [rung] = risk.climb(now, CSM)
    assert (rung.role, rung.person) == ("csm", CSM)
    assert (rung.escalation.number, rung.escalation.raised_at) == (1, now)
    assert rung.escalation.reasons == ["no engagement for 14 days"]
    assert risk.climb(now + timedelta(hours=1), CSM) == []
    assert len(risk.state.escalations) == 1


def test_an_escalation_climbs_when_nobody_acknowledges_it_in_time() -> None:
    risk = watch()
    now = at_high(risk)
    risk.climb(now, CSM)
    assert risk.climb(now + 2 * DAY - timedelta(seconds=1), CSM) == []
    assert told(risk.climb(now + 2 * DAY, CSM)) == [("cs_lead", LEAD)]
    assert told(risk.climb(now + 4 * DAY, CSM)) == [("head_of_cs", HEAD)]
    assert risk.climb(now + 30 * DAY, CSM) == []  # the top of the ladder
    escalation = risk.open_escalation()
    assert escalation is not None
    assert escalation.notified == ["csm", "cs_lead", "head_of_cs"]
    assert escalation.next_level_at is None


def test_an_acknowledged_escalation_stops_climbing_and_is_not_raised_again() -> None:
    risk = watch()
    now = at_high(risk)
    risk.climb(now, CSM)
    acked = risk.acknowledge("mei", "called them", now + DAY)
    assert (acked.acknowledged_by, acked.next_level_at) == ("mei", None)
    assert risk.open_escalation() is None
    assert risk.climb(now + 3 * DAY, CSM) == []  # still high: the same episode
    assert len(risk.state.escalations) == 1
    with pytest.raises(ValueError, match="acme has no open escalation"):
        risk.check_acknowledge("acme")


def test_a_new_escalation_once_risk_fell_and_came_back() -> None:
    risk = watch()
    now = at_high(risk)
    risk.climb(now, CSM)
    risk.acknowledge("mei", None, now + DAY)

    risk.engaged(EngagementKind.LOGIN, now + 2 * DAY)
    risk.reassess(now + 2 * DAY)
    assert risk.climb(now + 2 * DAY, CSM) == []  # low again: re-armed

    again = at_high(risk, 14 + 2 + 14)
    [rung] = risk.climb(again, CSM)
    assert (rung.escalation.number, rung.role) == (2, "csm")


def test_before_there_is_a_csm_the_escalation_goes_to_the_lead() -> None:
    risk = watch()
    now = at_high(risk)
    [rung] = risk.climb(now, None)
    assert (rung.role, rung.person, rung.escalation.level) == ("cs_lead", LEAD, 1)
    assert told(risk.climb(now + 2 * DAY, None)) == [("head_of_cs", HEAD)]


def test_before_there_is_a_csm_a_ladder_of_csms_only_goes_to_the_queue_inbox() -> None:
    risk = watch(playbook=only([LadderStep(role="csm")]))
    now = at_high(risk)
    [rung] = risk.climb(now, None)
    assert (rung.role, rung.person) == ("queue", None)
    assert rung.escalation.next_level_at is None
    assert risk.lead() is None


def test_a_ladder_of_csms_only_goes_to_the_csm_once_there_is_one() -> None:
    risk = watch(playbook=only([LadderStep(role="csm")]))
    assert told(risk.climb(at_high(risk), CSM)) == [("csm", CSM)]


def test_the_lead_is_the_first_rung_above_the_csm() -> None:
    assert watch().lead() == LEAD


# --- paused time ------------------------------------------------------------------------------


def test_time_paused_after_the_last_engagement_is_not_quiet_time() -> None:
    risk = watch()
    risk.engaged(EngagementKind.LOGIN, T0 + DAY)
    risk.resume(T0 + 3 * DAY, 5 * DAY)  # paused from day 3 to day 8
    assert risk.state.quiet_from == T0 + 6 * DAY
    assert level(risk, 12) is RiskLevel.LOW  # 11 days since, 6 of them counted
    assert level(risk, 13) is RiskLevel.MEDIUM


def test_engagement_during_a_pause_makes_quiet_time_count_from_the_resume() -> None:
    risk = watch()
    risk.engaged(EngagementKind.LOGIN, T0 + 5 * DAY)  # while paused, days 3 to 8
    risk.resume(T0 + 3 * DAY, 5 * DAY)
    assert risk.state.quiet_from == T0 + 8 * DAY
    assert level(risk, 14) is RiskLevel.LOW
    assert level(risk, 15) is RiskLevel.MEDIUM


def test_a_pause_gives_whoever_must_acknowledge_the_same_time_again() -> None:
    risk = watch()
    now = at_high(risk)
    risk.climb(now, CSM)  # the lead is due on day 16
    risk.resume(now + DAY, 3 * DAY)
    assert risk.climb(now + 4 * DAY, CSM) == []
    assert told(risk.climb(now + 5 * DAY, CSM)) == [("cs_lead", LEAD)]


def test_next_wake_is_the_next_threshold_or_rung_and_none_while_paused() -> None:
    risk = watch()
    assert risk.next_wake(T0, paused=False) == T0 + 7 * DAY
    assert risk.next_wake(T0 + 7 * DAY, paused=False) == T0 + 14 * DAY
    now = at_high(risk)
    risk.climb(now, CSM)
    assert risk.next_wake(now, paused=False) == now + 2 * DAY
    assert risk.next_wake(now, paused=True) is None
