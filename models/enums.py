"""The journey's fixed vocabularies: its stages and milestones, plans, touch models, and the
reasons and levels a person picks from. Plain enums, without pydantic, so the CLI builds its
options from them without building the messages (models/journey.py, which uses them).

Their values cross the Temporal boundary and are the CLI's spelling: add, never rename.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    DEPART = "depart"
    HANDOFF = "handoff"
    KICKOFF = "kickoff"
    ADOPT = "adopt"
    REVIEW = "review"
    EXPAND = "expand"
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # off the journey: the customer let go, or ops cancelled the run
    LAPSED = "lapsed"  # off the journey: overdue past every allowance, with no sign of life

    @property
    def position(self) -> int:
        """Journey order (StrEnum would otherwise compare alphabetically)."""
        return list(Stage).index(self)

    @property
    def next(self) -> Stage:
        return JOURNEY[self.position + 1]

    @property
    def ended(self) -> bool:
        return self in (Stage.COMPLETED, Stage.CANCELLED, Stage.LAPSED)


# The stages in order, from deal close to completion.
JOURNEY = list(Stage)[: list(Stage).index(Stage.COMPLETED) + 1]


class Milestone(StrEnum):
    """The facts that end a stage, in journey order. Values are the CLI spelling."""

    CONTRACT_SIGNED = "contract-signed"
    KICKOFF_HELD = "kickoff-held"
    INTEGRATION_DONE = "integration-done"
    REVIEW_PASSED = "review-passed"

    @property
    def stage(self) -> Stage:
        """The stage this milestone completes."""
        return _MILESTONE_STAGE[self]

    @property
    def prerequisites(self) -> list[Milestone]:
        order = list(Milestone)
        return order[: order.index(self)]


_MILESTONE_STAGE = {
    Milestone.CONTRACT_SIGNED: Stage.DEPART,
    Milestone.KICKOFF_HELD: Stage.KICKOFF,
    Milestone.INTEGRATION_DONE: Stage.ADOPT,
    Milestone.REVIEW_PASSED: Stage.REVIEW,
}


class Plan(StrEnum):
    BASIC = "basic"
    PREMIUM = "premium"
    ENTERPRISE = "enterprise"


class TouchModel(StrEnum):
    HIGH = "high"
    LOW = "low"
    TECH = "tech"
    COMMUNITY = "community"


class CancelReason(StrEnum):
    WRONG_FEATURES = "wrong_features"
    MISSING_FEATURES = "missing_features"
    PRICE = "price"
    TOO_HARD = "too_hard"
    NO_VALUE = "no_value"
    OTHER = "other"


class EngagementKind(StrEnum):
    LOGIN = "login"
    COURSE_COMPLETED = "course_completed"
    FEATURE_USED = "feature_used"
    SUPPORT_TICKET = "support_ticket"
    NPS = "nps"


class ChampionLossReason(StrEnum):
    LEFT = "left"
    MOVED = "moved"
    UNRESPONSIVE = "unresponsive"
    BOUNCED = "bounced"


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(RiskLevel).index(self)
