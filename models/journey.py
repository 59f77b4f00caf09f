"""The onboarding journey's messages: what starts it, what moves it, what it reports.

These cross the Temporal boundary (workflow input, signals, updates, queries), so they evolve
only by adding fields with defaults: a running onboarding must still decode its history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)

from models import door, limits

# The enums live in models/enums.py, without pydantic, for the CLI's options; imported here
# for the messages, and so `from models.journey import Stage` goes on working.
from models.enums import JOURNEY as JOURNEY
from models.enums import (
    CancelReason,
    ChampionLossReason,
    EngagementKind,
    Milestone,
    Plan,
    RiskLevel,
    Stage,
    TouchModel,
)

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_NAME),
    door.text(limits.MAX_NAME),
]
# Checked only at the door (models/door.py): running onboardings may hold anything here.
Text = Annotated[str, door.text(limits.MAX_NAME)]  # an id or a short value typed by hand
Who = Annotated[str, door.text(limits.MAX_NAME, blank=False)]  # who did or reports something
Note = Annotated[str, door.text(limits.MAX_NOTE)]
Goal = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), door.text(limits.MAX_GOAL)
]
Email = Annotated[EmailStr, door.safe_address]


def _aware(value: datetime | None) -> datetime | None:
    # Naive timestamps are ambiguous across the sales system, CSMs and the worker's zone.
    if value is not None and value.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-03-01T09:00:00Z")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
# When something already happened, as another system or a person says: at the door, not in
# the future (beyond clock skew) nor years ago.
Happened = Annotated[AwareDatetime, door.happened]


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    email: Email
    title: Text | None = None


class AccountExecutive(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Name
    email: Email


class OnboardingRequest(BaseModel):
    """What the sales system sends when a deal closes (one JSON document per account)."""

    model_config = ConfigDict(extra="forbid")

    account_id: Slug
    account_name: Name
    plan: Plan
    touch_model: TouchModel
    industry: Name
    use_case: Name
    # Never Infinity or NaN: pydantic writes them into JSON as null, so no onboarding can
    # hold one (its input would not decode); the upper bound is the door's.
    contract_value: Annotated[
        float, Field(ge=0, allow_inf_nan=False), door.at_most_value(limits.MAX_CONTRACT_VALUE)
    ]
    account_executive: AccountExecutive
    champion: Contact
    goals: Annotated[list[Goal], door.at_most(limits.MAX_GOALS, "goals")] = []
    contract_signed_at: Happened | None = None
    playbook: Slug = "standard"
    currency: Annotated[str, door.currency] | None = Field(
        default=None,
        description="The contract value's currency (ISO 4217); None: DEFAULT_CURRENCY.",
    )
    users: Annotated[
        list[Contact],
        door.at_most(limits.MAX_USERS, "users"),
        door.distinct_addresses("user"),
        Field(description="The customer's first users; each gets academy access."),
    ] = []
    # Plain strings when decoded (a running onboarding renders an unknown one in the
    # defaults); the accepted values are the door's.
    locale: Annotated[str, door.locale] = Field(
        default=door.DEFAULT_LOCALE,
        description="The language of the customer's mail: en or ja.",
    )
    timezone: Annotated[str, door.timezone] | None = Field(
        default=None,
        description="The customer's IANA time zone (Asia/Tokyo) for dates and times in their "
        "mail; None: DEFAULT_TIMEZONE.",
    )


class MilestoneSignal(BaseModel):
    """Payload of the milestone signals (`contract_signed`, `kickoff_held`, ...)."""

    by: Who
    at: Happened | None = None
    note: Note | None = None


class CompleteMilestone(BaseModel):
    """Input of the `complete_milestone` update (the CSM's interface)."""

    milestone: Milestone
    by: Who
    at: Happened | None = None
    note: Note | None = None


class MilestoneRecord(BaseModel):
    at: datetime
    by: str
    note: str | None = None
    recorded_at: datetime


class StageVisit(BaseModel):
    stage: Stage
    entered_at: datetime
    exited_at: datetime | None = None


class CsmRef(BaseModel):
    id: str
    name: str
    email: str
    pooled: bool = Field(
        default=False, description="No CSM had capacity: this is the pooled queue's inbox."
    )
    reason: str | None = Field(default=None, description="Why it is pooled.")


QUEUE_ID = "queue"


class ReassignCsm(BaseModel):
    """Input of the `reassign_csm` update: hand the onboarding to another CSM."""

    to: Text
    reason: Name
    by: Who
    over_capacity: bool = Field(default=False, description="Allow going beyond capacity.")


class ResolveIncident(BaseModel):
    """Input of the `resolve_incident` update: send a failed message again (after the data
    that broke it was fixed) or dismiss it."""

    number: int | None = Field(default=None, ge=1, description="None: every open incident.")
    retry: bool = Field(description="Send again (true) or dismiss (false).")
    by: Who
    note: Note | None = None


class HelpRequest(BaseModel):
    """Payload of the `help_requested` signal: the customer asks for help (the portal). `id`
    makes its mail once, however often the request is sent."""

    id: Text
    message: Annotated[str, door.text(limits.MAX_NOTE, blank=False)]
    by: Who
    reply_to: Contact | None = None


class UsersAdded(BaseModel):
    """Payload of the `users_added` signal and input of the `add_users` update: new users
    who need academy access."""

    users: Annotated[
        list[Contact],
        Field(min_length=1),
        door.at_most(limits.MAX_USERS, "users"),
        door.distinct_addresses("user"),
    ]
    by: Who


class TaskSignal(BaseModel):
    """Payload of the `task_done` signal (a system reports a checklist step done)."""

    task_id: Text
    by: Who
    at: Happened | None = None


class CompleteTask(BaseModel):
    """Input of the `complete_task` update."""

    task_id: Text
    by: Who
    note: Note | None = None


class ExtendDeadline(BaseModel):
    """Input of the `extend_deadline` update: a task's deadline, or the stage's when `task_id`
    is None; either a new due time or an amount to add."""

    task_id: Text | None = None
    due_at: AwareDatetime | None = None
    extend_by: timedelta | None = None
    reason: Name
    by: Who

    @model_validator(mode="after")
    def _one_of(self) -> ExtendDeadline:
        if (self.due_at is None) == (self.extend_by is None):
            raise ValueError("give either due_at or extend_by")
        return self


class PauseClock(BaseModel):
    by: Who
    reason: Name


class ResumeClock(BaseModel):
    by: Who


class Cancel(BaseModel):
    """Input of the `cancel` update: the customer lets go."""

    reason: CancelReason
    note: Note | None = None
    by: Who


class Cancellation(Cancel):
    at: datetime
    stage: Stage


class Engagement(BaseModel):
    """Payload of the `engagement` signal: the customer did something (`count` times, the
    last at `at`: a product that reports often sends one signal per batch)."""

    kind: EngagementKind
    value: Text | None = None
    at: Happened | None = None
    count: int = Field(default=1, ge=1, le=1_000_000)


class ChampionChanged(BaseModel):
    """Payload of the `champion_changed` signal (CRM, mail bounces)."""

    reason: ChampionLossReason
    new_champion: Contact | None = None
    at: Happened | None = None


class ChampionChange(ChampionChanged):
    at: datetime  # type: ignore[assignment]


class SetChampion(BaseModel):
    """Input of the `set_champion` update: the CSM names the new champion."""

    champion: Contact
    by: Who


class RiskAssessment(BaseModel):
    level: RiskLevel = RiskLevel.LOW
    reasons: list[str] = []


class Escalation(BaseModel):
    number: int
    raised_at: datetime
    reasons: list[str]
    level: int = Field(default=0, description="Rung of the ladder reached (0 = first).")
    notified: list[str] = Field(default=[], description="Roles told so far.")
    next_level_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    note: str | None = None


class Acknowledge(BaseModel):
    by: Who
    note: Note | None = None


class TaskStatus(BaseModel):
    id: str
    title: str
    owner: str
    stage: Stage
    required: bool
    due_at: datetime
    done_at: datetime | None = None
    done_by: str | None = None
    reminders_sent: int = 0
    last_reminded_at: datetime | None = None
    extended_by: timedelta = timedelta(0)
    active_from: datetime | None = Field(
        default=None, description="When its stage was entered; no reminders before."
    )

    def overdue(self, now: datetime) -> bool:
        return self.done_at is None and now > self.due_at


class MilestoneResult(BaseModel):
    """The `complete_milestone` update's answer."""

    milestone: Milestone
    recorded_at: datetime
    stage: Stage = Field(description="The onboarding's stage once the milestone was applied.")
