"""The risk assessment: a pure function of the facts and the playbook's thresholds."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from models.journey import ChampionChange, RiskAssessment, RiskLevel
from models.playbook import RiskThresholds


class RiskFacts(BaseModel):
    now: datetime
    last_engagement_at: datetime
    """The last sign of life (the onboarding's start when there was none)."""
    missed_deadlines: int = 0
    unanswered_reminders: int = 0
    """Reminders to the champion since their last engagement."""
    champion_change: ChampionChange | None = None
    """A champion loss not yet followed by engagement of the (new) champion."""


def assess(facts: RiskFacts, limits: RiskThresholds) -> RiskAssessment:
    found: list[tuple[RiskLevel, str]] = []

    def check(value: float, medium: float, high: float, reason: str) -> None:
        if value >= high:
            found.append((RiskLevel.HIGH, reason))
        elif value >= medium:
            found.append((RiskLevel.MEDIUM, reason))

    if facts.champion_change is not None:
        change = facts.champion_change
        found.append((RiskLevel.HIGH, f"champion {change.reason} on {change.at:%Y-%m-%d}"))
    quiet = facts.now - facts.last_engagement_at
    check(
        quiet.total_seconds(),
        limits.quiet_medium.total_seconds(),
        limits.quiet_high.total_seconds(),
        f"no engagement for {_span(quiet)}",
    )
    check(
        facts.missed_deadlines,
        limits.missed_medium,
        limits.missed_high,
        f"{facts.missed_deadlines} deadline{'s' if facts.missed_deadlines != 1 else ''} missed",
    )
    check(
        facts.unanswered_reminders,
        limits.unanswered_medium,
        limits.unanswered_high,
        f"{facts.unanswered_reminders} reminders unanswered",
    )
    if not found:
        return RiskAssessment()
    level = max((level for level, _ in found), key=lambda level: level.rank)
    return RiskAssessment(level=level, reasons=[reason for _, reason in found])


def _span(quiet: timedelta) -> str:
    """Readable and exact enough: "12 days", "36 hours", "90 seconds"."""
    seconds = int(quiet.total_seconds())
    days, rest = divmod(seconds, 86400)
    for amount, unit in (
        (days if days >= 2 or (days == 1 and not rest) else 0, "day"),
        (seconds // 3600 if seconds % 3600 == 0 or seconds >= 7200 else 0, "hour"),
        (seconds // 60 if seconds % 60 == 0 or seconds >= 600 else 0, "minute"),
    ):
        if amount:
            return f"{amount} {unit}{'s' if amount != 1 else ''}"
    return f"{seconds} seconds"
