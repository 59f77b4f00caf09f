"""Inputs and outputs of the activities: one model in, one out, each.

The workflows hand their side effects over in batches (`Effects`): one activity per pass of
the workflow instead of one per record and mail keeps a journey's history short, while every
entry stays idempotent on its own (rows are upserts on business keys, mails and chats are
sent once per key).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

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
    StageVisit,
    TouchModel,
)


class OnboardingOpened(BaseModel):
    request: OnboardingRequest
    workflow_id: str
    run_id: str = Field(description="The first run of the chain: a new chain starts clean.")
    playbook: str
    started_at: datetime


class RowFacts(BaseModel):
    """What the onboarding row says about the journey (the scorecard reads it)."""

    stage: Stage
    contract_signed_at: datetime | None = None
    kickoff_at: datetime | None = None
    first_value_at: datetime | None = None
    lapses_at: datetime | None = None
    """When the stage is overdue beyond what the playbook allows (deadline + max_extension)."""
    completed_at: datetime | None = None
    cancellation: Cancellation | None = None
    lapsed_at: datetime | None = None
    closed_at: datetime | None = None
    """Any end: completed, cancelled, lapsed. Open rows count against their CSM's capacity."""


class SupportTicketRecord(BaseModel):
    account_id: str
    ticket: str
    at: datetime


class CsmRequest(BaseModel):
    account_id: str
    touch_model: TouchModel
    industry: str = ""
    run_id: str | None = None
    """The onboarding's run chain: refused when the row belongs to a newer one."""


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
    run_id: str | None = None
    """The onboarding's run chain: refused when the row belongs to a newer one."""


class AcademyAccess(BaseModel):
    account_id: str
    user: Contact
    courses: list[str]
    at: datetime


class HandoffRecord(BaseModel):
    """The AE's notes, kept with the onboarding at handoff. (Who the CSM is, the roster's
    activities write as they assign: a copy here could be stale by the time it is carried
    out.)"""

    account_id: str
    notes: list[str]


class TaskDue(BaseModel):
    stage: Stage = Stage.KICKOFF
    id: str
    title: str
    owner: str
    required: bool
    due_at: datetime
    done_at: datetime | None = None


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
    CLOSED = "closed"
    INCIDENT = "incident"
    HELP_REQUEST = "help_request"


class Role(StrEnum):
    """Who a message's addressee is to the account: it decides the greeting, who signs, and
    where a reply goes (activities/mail.py `Voice`)."""

    CHAMPION = "champion"
    USER = "user"
    """One of the customer's users (an academy invite; the champion's own is one too)."""
    CSM = "csm"
    """The CSM, or the pooled queue's inbox while no CSM has room."""
    AE = "ae"
    LEAD = "lead"
    """Above the CSM on the escalation ladder: the CS lead, the head of CS."""
    QUEUE = "queue"
    """The CS team's queue inbox (CS ops), for notices with nobody else to go to."""


CUSTOMER = frozenset({Role.CHAMPION, Role.USER})


class MailContext(BaseModel):
    """What a template may use; fields a message does not need stay at their defaults."""

    account: OnboardingRequest
    csm: CsmRef | None = None
    stage_due_at: datetime | None = None
    """The current stage's own deadline (`due_at` is the soonest of every open step, an
    overdue task of an earlier stage included)."""
    touch_model: TouchModel | None = None
    """The touch model in force: high once a low- or tech-touch account was switched to a
    named CSM. None (everboarding, batches decided before this field): the deal's."""
    contract_signed_at: datetime | None = None
    """When the contract was signed, from the deal or the contract-signed milestone. None:
    not yet (or a batch decided before this field: the deal's then says)."""
    kickoff_automated: bool = False
    """The playbook holds no kickoff meeting for this account (tech-, community-touch)."""
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
    reply_to: Contact | None = None
    """A message's own: the customer who asked for help."""
    """The customer's learning path and the wording for their segment."""
    courses: list[CoursePlan] = []
    """Courses a message suggests (the digest's next advanced courses, an invite's path)."""
    features: list[FeatureAnnouncement] = []
    """New features a digest announces."""
    previous_csm: CsmRef | None = None
    """For a reassignment: who had the account."""
    note: str | None = None
    """A person's words for the recipient (a reassignment's reason, why a run was closed)."""


class Mail(BaseModel):
    """One message of a batch: the batch's context, with this message's own parts."""

    key: str
    """Business key, unique per message: retries and replays never send twice."""
    template: MailTemplate
    to: Contact | None
    """None: the CS team's queue inbox (the roster's `queue`), for internal notices that
    have nobody else to go to."""
    role: Role | None = None
    """Who `to` is. None (everboarding's messages, and those decided before this field):
    inferred from the template (activities/mail.py `recipient_role`)."""
    cc: list[Contact] = []
    tasks: list[TaskDue] = []
    step: TaskDue | None = None
    escalation: Escalation | None = None
    courses: list[CoursePlan] = []
    features: list[FeatureAnnouncement] = []
    digest_number: int = 0
    previous_csm: CsmRef | None = None
    note: str | None = None
    chat: bool = False
    reply_to: Contact | None = None
    """Where a reply goes, when not to who speaks: the customer who asked for help."""
    """Also post it to the team's chat (`{template}.chat.j2`), under `{key}:chat`."""

    def context(self, shared: MailContext) -> MailContext:
        own = {name: getattr(self, name) for name in MESSAGE_PARTS & self.model_fields_set}
        return shared.model_copy(update=own)


# The parts of a message's context that are its own (the rest the batch shares).
MESSAGE_PARTS = {
    "tasks",
    "step",
    "escalation",
    "courses",
    "features",
    "digest_number",
    "previous_csm",
    "note",
    "reply_to",
}


def academy_key(email: str) -> str:
    """The academy invite's key part for a user: a digest of the address, so the key (logged,
    naming the outbox's file) carries no personal data."""
    return "academy:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:12]


class Effects(BaseModel):
    """Everything one pass of a workflow decided, carried out in this order: the records,
    then the messages (a message is never about something not yet on record)."""

    account_id: str
    run_id: str | None = None
    """The onboarding's run chain: a batch of a chain the row no longer belongs to (a newer
    onboarding of the account started since) is not carried out. None: not fenced."""
    opened: OnboardingOpened | None = None
    row: RowFacts | None = None
    visits: list[StageVisit] = []
    """Stage visits new or changed since the last batch (entered, exited)."""
    handoff: HandoffRecord | None = None
    tasks: list[TaskDue] = []
    removed_tasks: list[str] = Field(
        default=[], description="Task ids a newer playbook took off the checklist."
    )
    grants: list[AcademyAccess] = []
    tickets: list[SupportTicketRecord] = []
    risk: RiskAssessment | None = None
    """A new risk level, recorded at `at`."""
    escalations: list[Escalation] = []
    churn: Churn | None = None
    at: datetime
    context: MailContext | None = None
    mails: list[Mail] = []

    def summary(self) -> str:
        """For the run's timeline in the Web UI: what this batch does, in a line."""
        parts = []
        if self.opened:
            parts.append("open the record")
        if self.visits:
            parts.append("stages " + " → ".join(visit.stage for visit in self.visits))
        if self.row and not self.visits:
            parts.append("update the record")
        if self.handoff:
            parts.append("record the handoff")
        if self.tasks:
            parts.append(f"{len(self.tasks)} checklist task(s)")
        if self.removed_tasks:
            parts.append(f"{len(self.removed_tasks)} task(s) off the checklist")
        if self.grants:
            parts.append(f"academy access for {len(self.grants)}")
        if self.tickets:
            parts.append(f"{len(self.tickets)} support ticket(s)")
        if self.risk:
            parts.append(f"risk {self.risk.level}")
        if self.escalations:
            parts.append("escalation " + ", ".join(f"#{e.number}" for e in self.escalations))
        if self.churn:
            parts.append(f"churn ({self.churn.reason})")
        for mail in self.mails:
            parts.append(f"mail {mail.template}" + (" + chat" if mail.chat else ""))
        return "; ".join(parts) or "nothing"

    @property
    def decided(self) -> bool:
        """Holds what only a pass decided (events, mail), not what the state can tell again."""
        return bool(
            self.opened or self.handoff or self.grants or self.risk or self.churn or self.mails
        )

    @property
    def empty(self) -> bool:
        return not (
            self.decided
            or self.row
            or self.visits
            or self.tasks
            or self.removed_tasks
            or self.tickets
            or self.escalations
        )


class MailFailure(BaseModel):
    """A message that can never go as it is (refused for good, invalid, template error)."""

    key: str
    template: MailTemplate
    error_type: str
    reason: str
    """Free of personal data."""


class EffectsDone(BaseModel):
    delivered: list[str] = []
    """Keys of the messages sent by this attempt (not those already sent before)."""
    failed: list[MailFailure] = []
    """Messages that failed for good: the workflow raises an incident for each."""
    superseded: bool = False
    """Nothing was done: a newer onboarding of the account owns its row."""
