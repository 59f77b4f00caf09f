"""Inputs and outputs of the activities: one model in, one out, each."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from models.academy import CoursePlan, LearningPath
from models.everboarding import Churn, FeatureAnnouncement
from models.journey import (
    Cancellation,
    Contact,
    CsmRef,
    Escalation,
    OnboardingRequest,
    RiskAssessment,
    Stage,
    TouchModel,
)


class OnboardingOpened(BaseModel):
    request: OnboardingRequest
    workflow_id: str
    playbook: str
    started_at: datetime


class StageChange(BaseModel):
    """The onboarding entered `stage` at `at`, leaving `previous` (if any)."""

    account_id: str
    stage: Stage
    previous: Stage | None
    at: datetime
    contract_signed_at: datetime | None = None
    kickoff_at: datetime | None = None
    first_value_at: datetime | None = None
    cancellation: Cancellation | None = None
    lapses_at: datetime | None = None
    """When the stage counts as overdue beyond what the playbook allows (scorecard)."""


class SupportTicketRecord(BaseModel):
    account_id: str
    ticket: str
    at: datetime


class CsmRequest(BaseModel):
    account_id: str
    touch_model: TouchModel
    industry: str = ""


class ReassignRequest(BaseModel):
    account_id: str
    number: int
    """Numbers the account's reassignments (the idempotency key)."""
    to: str
    touch_model: TouchModel
    reason: str
    by: str
    at: datetime
    over_capacity: bool = False


class AcademyAccess(BaseModel):
    account_id: str
    user: Contact
    courses: list[str]
    at: datetime


class ChurnRecord(BaseModel):
    account_id: str
    churn: Churn


class HandoffRecord(BaseModel):
    account_id: str
    csm_id: str | None
    """None while the onboarding waits in the pooled queue."""
    notes: list[str]


class TaskDue(BaseModel):
    stage: Stage = Stage.KICKOFF
    id: str
    title: str
    owner: str
    required: bool
    due_at: datetime
    done_at: datetime | None = None


class Checklist(BaseModel):
    account_id: str
    stage: Stage
    tasks: list[TaskDue]


class ChecklistResult(BaseModel):
    created: int


class MailTemplate(StrEnum):
    """One template per message (files under activities/templates/)."""

    WHAT_TO_EXPECT = "what_to_expect"
    HANDOFF_BRIEF = "handoff_brief"
    WELCOME = "welcome"
    REVIEW_CHECKLIST = "review_checklist"
    EXPAND = "expand"
    KEEP_LEARNING = "keep_learning"
    DIGEST = "digest"
    REMINDER = "reminder"
    FAREWELL = "farewell"
    ESCALATION = "escalation"
    NAME_CHAMPION = "name_champion"
    ACADEMY_INVITE = "academy_invite"
    REASSIGNED = "reassigned"
    ADOPTION_CHECKIN = "adoption_checkin"


class MailContext(BaseModel):
    """What a template may use; fields a message does not need stay at their defaults."""

    account: OnboardingRequest
    csm: CsmRef | None = None
    due_at: datetime | None = None
    tasks: list[TaskDue] = []
    digest_number: int = 0
    step: TaskDue | None = None
    """The step a reminder is about."""
    now: datetime | None = None
    cancellation: Cancellation | None = None
    risk: RiskAssessment | None = None
    escalation: Escalation | None = None
    path: LearningPath = LearningPath()
    """The customer's learning path and the wording for their segment."""
    courses: list[CoursePlan] = []
    """Courses a message suggests (the digest's next advanced courses, an invite's path)."""
    features: list[FeatureAnnouncement] = []
    """New features a digest announces."""
    previous_csm: CsmRef | None = None
    """For a reassignment: who had the account."""
    note: str | None = None
    """A person's words for the recipient (a reassignment's reason)."""


class EmailRequest(BaseModel):
    key: str
    """Business key, unique per message: retries and replays never send twice."""
    account_id: str
    template: MailTemplate
    to: Contact
    cc: list[Contact] = []
    context: MailContext


class EmailReceipt(BaseModel):
    key: str
    delivered: bool
    """False when the key had already been sent (a retry or a replay)."""


class RiskRecord(BaseModel):
    account_id: str
    risk: RiskAssessment
    at: datetime


class EscalationRecord(BaseModel):
    account_id: str
    escalation: Escalation


class ChatRequest(BaseModel):
    """A chat message for internal people, rendered from `{template}.chat.j2`."""

    key: str
    account_id: str
    template: MailTemplate
    context: MailContext


class ChatReceipt(BaseModel):
    key: str
    delivered: bool
    """False when already sent, or when no chat is configured (CHAT_URLS)."""
