"""The risk function at each threshold's boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.journey import ChampionChange, ChampionLossReason, RiskLevel
from models.playbook import RiskThresholds
from workflows.onboarding.risk import RiskFacts, assess

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
LIMITS = RiskThresholds()  # quiet 7d/14d, missed 1/2, unanswered 2/4


def facts(**changes: object) -> RiskFacts:
    return RiskFacts.model_validate({"now": NOW, "last_engagement_at": NOW} | changes)


def test_no_facts_no_risk() -> None:
    risk = assess(facts(), LIMITS)
    assert (risk.level, risk.reasons) == (RiskLevel.LOW, [])


@pytest.mark.parametrize(
    ("quiet", "level"),
    [
        (timedelta(days=7) - timedelta(seconds=1), RiskLevel.LOW),
        (timedelta(days=7), RiskLevel.MEDIUM),
        (timedelta(days=14) - timedelta(seconds=1), RiskLevel.MEDIUM),
        (timedelta(days=14), RiskLevel.HIGH),
    ],
)
def test_days_without_engagement(quiet: timedelta, level: RiskLevel) -> None:
    risk = assess(facts(last_engagement_at=NOW - quiet), LIMITS)
    assert risk.level is level
    if level is not RiskLevel.LOW:
        assert risk.reasons == [f"no engagement for {quiet.days} days"]


@pytest.mark.parametrize(
    ("missed", "level", "reason"),
    [
        (0, RiskLevel.LOW, None),
        (1, RiskLevel.MEDIUM, "1 deadline missed"),
        (2, RiskLevel.HIGH, "2 deadlines missed"),
    ],
)
def test_missed_deadlines(missed: int, level: RiskLevel, reason: str | None) -> None:
    risk = assess(facts(missed_deadlines=missed), LIMITS)
    assert risk.level is level
    assert risk.reasons == ([reason] if reason else [])


@pytest.mark.parametrize(
    ("unanswered", "level"),
    [(1, RiskLevel.LOW), (2, RiskLevel.MEDIUM), (3, RiskLevel.MEDIUM), (4, RiskLevel.HIGH)],
)
def test_unanswered_reminders(unanswered: int, level: RiskLevel) -> None:
    assert assess(facts(unanswered_reminders=unanswered), LIMITS).level is level


def test_champion_loss_is_high_at_once_and_reasons_add_up() -> None:
    change = ChampionChange(reason=ChampionLossReason.LEFT, at=datetime(2026, 3, 2, tzinfo=UTC))
    risk = assess(facts(champion_change=change, missed_deadlines=1, last_engagement_at=NOW), LIMITS)
    assert risk.level is RiskLevel.HIGH
    assert risk.reasons == ["champion left on 2026-03-02", "1 deadline missed"]


def test_thresholds_come_from_the_playbook() -> None:
    strict = RiskThresholds(quiet_medium=timedelta(hours=36), quiet_high=timedelta(days=3))
    risk = assess(facts(last_engagement_at=NOW - timedelta(hours=36)), strict)
    assert (risk.level, risk.reasons) == (RiskLevel.MEDIUM, ["no engagement for 36 hours"])
