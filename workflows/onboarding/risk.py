"""Motivation and champion risk, and the escalation ladder: engagement, the champion, the
assessment (a pure function of the facts and the playbook's thresholds) and who is told when.
Plain code: it takes `now` and returns decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from models.journey import (
    ChampionChange,
    ChampionChanged,
    Contact,
    EngagementKind,
    Escalation,
    RiskAssessment,
    RiskLevel,
    TouchModel,
)
from models.onboarding import RiskState
from models.playbook import LadderStep, Playbook, RiskThresholds


class RiskFacts(BaseModel):
    now: datetime
    last_engagement_at: datetime
    """Where quiet time counts from (the onboarding's start when nobody engaged yet)."""
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


@dataclass(frozen=True)
class Rung:
    """Tell someone about an escalation: `person` None means the CS team's queue inbox."""

    escalation: Escalation
    role: str
    person: Contact | None
    raised: bool
    """The escalation's first rung (else it climbed)."""


class RiskWatch:
    def __init__(self, state: RiskState, playbook: Playbook, touch_model: TouchModel) -> None:
        self.state = state
        self.playbook = playbook
        self.touch_model = touch_model

    # --- facts ----------------------------------------------------------------------------

    def engaged(self, kind: EngagementKind, at: datetime, count: int = 1) -> None:
        state = self.state
        state.engagements[kind] = state.engagements.get(kind, 0) + count
        if state.last_engagement_at is None or at > state.last_engagement_at:
            state.last_engagement_at = at
        state.quiet_from = max(state.quiet_from, at)
        state.champion_reminders = [t for t in state.champion_reminders if t > at]

    def champion_reminded(self, now: datetime) -> None:
        self.state.champion_reminders.append(now)

    def missed(self, overdue: list[str]) -> None:
        self.state.missed += [step for step in overdue if step not in self.state.missed]

    def champion_changed(self, signal: ChampionChanged, at: datetime, now: datetime) -> None:
        state = self.state
        state.champion_losses += 1
        state.champion_change = ChampionChange(
            reason=signal.reason, new_champion=signal.new_champion, at=at
        )
        if signal.new_champion is not None:
            state.champion = signal.new_champion
            state.champion_named_at = now
        else:
            state.champion_named_at = None
            state.ask_for_champion = True

    def name_champion(self, champion: Contact, now: datetime) -> None:
        self.state.champion = champion
        self.state.champion_named_at = now

    def resume(self, paused_at: datetime, paused_for: timedelta) -> None:
        """Time paused is not quiet time, and gives whoever must acknowledge an escalation
        the same time again."""
        state = self.state
        resumed_at = paused_at + paused_for
        state.quiet_from += resumed_at - max(paused_at, state.quiet_from)
        escalation = self.open_escalation()
        if escalation is not None and escalation.next_level_at is not None:
            escalation.next_level_at += paused_for

    # --- the assessment -------------------------------------------------------------------

    def assess(self, now: datetime) -> RiskAssessment:
        state = self.state
        change = state.champion_change
        recovered = (
            change is not None
            and state.champion_named_at is not None
            and state.last_engagement_at is not None
            and state.last_engagement_at > max(change.at, state.champion_named_at)
        )
        return assess(
            RiskFacts(
                now=now,
                last_engagement_at=state.quiet_from,
                missed_deadlines=len(state.missed),
                unanswered_reminders=len(state.champion_reminders),
                champion_change=None if recovered else change,
            ),
            self.playbook.risk,
        )

    def open_escalation(self) -> Escalation | None:
        latest = self.state.escalations[-1] if self.state.escalations else None
        return latest if latest and latest.acknowledged_at is None else None

    # --- the ladder -----------------------------------------------------------------------

    def reassess(self, now: datetime) -> tuple[RiskAssessment | None, bool]:
        """Re-assess: the new level when it changed (to record), and whether the account now
        needs a named CSM (a low- or tech-touch customer at high risk, where the playbook
        says so)."""
        state, policy = self.state, self.playbook.escalation
        risk = self.assess(now)
        changed = risk.level is not state.assessment.level
        state.assessment = risk  # reasons read fresh ("12 days"); the level is what is recorded
        switch = (
            policy.switch_to_high_touch
            and risk.level is RiskLevel.HIGH
            and state.high_touch_since is None
            and self.touch_model in (TouchModel.LOW, TouchModel.TECH)
        )
        if switch:
            state.high_touch_since = now
        return (risk if changed else None), switch

    def ask_for_champion(self, csm: Contact | None) -> bool:
        """A champion left without a successor: ask the CSM (once there is one) to name one."""
        if self.state.ask_for_champion and csm is not None:
            self.state.ask_for_champion = False
            return True
        return False

    def climb(self, now: datetime, csm: Contact | None) -> list[Rung]:
        """Raise an escalation at the playbook's level (once per time risk reaches it), or
        take the open one a rung up when nobody acknowledged it in time: whom to tell."""
        state, policy = self.state, self.playbook.escalation
        rungs = []
        if state.assessment.level.rank < RiskLevel(policy.at).rank:
            state.armed = True
        elif state.armed and self.open_escalation() is None:
            state.armed = False
            raised = Escalation(
                number=len(state.escalations) + 1,
                raised_at=now,
                reasons=state.assessment.reasons,
            )
            state.escalations.append(raised)
            rungs.append(self._tell(raised, now, csm, raised=True))
        escalation = self.open_escalation()
        if (
            escalation is not None
            and escalation.next_level_at is not None
            and escalation.next_level_at <= now
        ):
            escalation.level += 1
            rungs.append(self._tell(escalation, now, csm, raised=False))
        return rungs

    def _tell(
        self, escalation: Escalation, now: datetime, csm: Contact | None, raised: bool
    ) -> Rung:
        """Who hears of the escalation at its level. Before there is a CSM, the CSM's rung
        goes to the CS lead (the ladder's next rung), or to the queue inbox if it has none."""
        ladder = self.playbook.escalation.ladder
        if ladder[escalation.level].role == "csm" and csm is None:
            escalation.level = next(
                (n for n, rung in enumerate(ladder) if rung.role != "csm"), escalation.level
            )
        rung = ladder[escalation.level]
        top = escalation.level + 1 >= len(ladder)
        escalation.next_level_at = None if top else now + rung.ack_within
        if rung.role == "csm":
            role, person = ("csm", csm) if csm is not None else ("queue", None)
        else:
            role, person = rung.role, _contact(rung)
        escalation.notified.append(role)
        return Rung(escalation=escalation, role=role, person=person, raised=raised)

    def lead(self) -> Contact | None:
        """The CS lead: the ladder's first rung above the CSM (None: the queue inbox)."""
        rung = next((r for r in self.playbook.escalation.ladder if r.role != "csm"), None)
        return _contact(rung) if rung else None

    def check_acknowledge(self, account_id: str) -> Escalation:
        escalation = self.open_escalation()
        if escalation is None:
            raise ValueError(f"{account_id} has no open escalation")
        return escalation

    def acknowledge(self, by: str, note: str | None, now: datetime) -> Escalation:
        """Acknowledge the open escalation (its validator checked there is one)."""
        escalation = self.open_escalation()
        assert escalation is not None
        escalation.acknowledged_at = now
        escalation.acknowledged_by = by
        escalation.note = note
        escalation.next_level_at = None
        return escalation

    def next_wake(self, now: datetime, paused: bool) -> datetime | None:
        """When the risk may change by itself (a quiet-time threshold) or an escalation
        climbs; None while paused (nothing moves then)."""
        if paused:
            return None
        limits = self.playbook.risk
        times = [
            self.state.quiet_from + limits.quiet_medium,
            self.state.quiet_from + limits.quiet_high,
        ]
        if (escalation := self.open_escalation()) is not None and escalation.next_level_at:
            times.append(escalation.next_level_at)
        return min((t for t in times if t > now), default=None)


def _contact(rung: LadderStep) -> Contact:
    return Contact(name=rung.name or rung.role, email=rung.email)  # type: ignore[arg-type]
