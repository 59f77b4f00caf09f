"""The database: the read model and the system's memory outside Temporal.

Rows never cross the Temporal boundary; activities translate to and from the pydantic
messages. Unique constraints carry the business keys that make every activity idempotent.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, DateTime, Dialect, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware on every backend: SQLite drops the zone, so store and read UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime {value} would be ambiguous in the database")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class CsmBase(SQLModel):
    name: str
    email: str
    touch_models: list[str] = Field(sa_column=Column(JSON, nullable=False))
    industries: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, default=[])
    )
    chat: str | None = None
    capacity: int = 25
    active: bool = True


class Csm(CsmBase, table=True):
    """The customer-success managers an onboarding can be assigned to. `capacity` is the
    most active onboardings they take; assignment never goes beyond it."""

    id: str = Field(primary_key=True)


class Onboarding(SQLModel, table=True):
    """One row per account's onboarding: its segment, owner and milestone dates."""

    account_id: str = Field(primary_key=True)
    workflow_id: str
    run_id: str | None = Field(
        default=None,
        description="The first run of the onboarding's workflow chain: a new chain under the "
        "same workflow id (after a failed or terminated one) starts the row afresh.",
    )
    account_name: str
    plan: str = Field(index=True)
    touch_model: str = Field(index=True)
    industry: str = Field(index=True)
    use_case: str
    contract_value: float
    playbook: str
    account_executive_id: str
    champion_email: str
    csm_id: str | None = Field(default=None, index=True, foreign_key="csm.id")
    stage: str = Field(index=True)
    handoff_notes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    started_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UtcDateTime,
        index=True,
        description="The scorecard's cohort is the onboardings started in a range.",
    )
    contract_signed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    kickoff_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    first_value_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    cancel_reason: str | None = None
    cancel_note: str | None = None
    queued_since: datetime | None = Field(
        default=None,
        sa_type=UtcDateTime,
        description="Waiting in the pooled queue: no CSM had capacity.",
    )
    lapses_at: datetime | None = Field(
        default=None,
        sa_type=UtcDateTime,
        description="When the current stage is overdue by more than the playbook allows: "
        "its deadline plus the playbook's max_extension (the scorecard's completion rate).",
    )
    lapsed_at: datetime | None = Field(
        default=None,
        sa_type=UtcDateTime,
        description="Closed as lapsed: overdue past every allowance with no sign of life.",
    )
    closed_at: datetime | None = Field(
        default=None,
        sa_type=UtcDateTime,
        index=True,
        description="Any end (completed, cancelled, lapsed, or closed by `starter.py "
        "reconcile` after the run ended without saying so). Open rows count against their "
        "CSM's capacity.",
    )
    churned_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    churn_reason: str | None = None
    churn_note: str | None = None


class SupportTicket(SQLModel, table=True):
    """A support ticket the customer opened (engagement signal `support_ticket`), during
    onboarding or everboarding: the scorecard counts them per new customer."""

    __table_args__ = (UniqueConstraint("account_id", "ticket"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(index=True)
    ticket: str
    """The support system's id, or the time reported when it sent none (the idempotency key)."""
    opened_at: datetime = Field(sa_type=UtcDateTime)


class StageTransition(SQLModel, table=True):
    """When an onboarding entered and left each stage (the funnel and stage durations)."""

    __table_args__ = (UniqueConstraint("account_id", "stage"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="onboarding.account_id", index=True)
    stage: str
    entered_at: datetime = Field(sa_type=UtcDateTime)
    exited_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Task(SQLModel, table=True):
    """A step on the customer's checklist, created from the playbook at kickoff."""

    __table_args__ = (UniqueConstraint("account_id", "task_id"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="onboarding.account_id", index=True)
    task_id: str
    stage: str
    title: str
    owner: str
    required: bool = True
    due_at: datetime = Field(sa_type=UtcDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Notification(SQLModel, table=True):
    """The outbox: every message the system sends, under a unique business key.

    An attempt claims a row (`sending`, its token, a lease) before delivery and marks it
    `sent` after; a message that can never go is `failed`, with why. Another attempt sends
    only when the lease ran out (the first attempt died). `pending`: written by 0.2.0.
    """

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    account_id: str = Field(index=True)
    channel: str = "email"
    template: str
    recipient: str
    subject: str
    body_text: str
    status: str = "pending"
    claimed_by: str | None = None
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    attempts: int = 0
    error_type: str | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class RiskChange(SQLModel, table=True):
    """Every change of an onboarding's risk level, with the reasons in words."""

    __table_args__ = (UniqueConstraint("account_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(index=True)
    level: str
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(sa_type=UtcDateTime)


class EscalationLog(SQLModel, table=True):
    """Escalations raised, how far up the ladder they went, and who acknowledged them."""

    __table_args__ = (UniqueConstraint("account_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(index=True)
    number: int
    level: int
    notified: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    raised_at: datetime = Field(sa_type=UtcDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    acknowledged_by: str | None = None
    note: str | None = None


class Reassignment(SQLModel, table=True):
    """A CSM handing an onboarding (with its open tasks and escalations) to another."""

    __table_args__ = (UniqueConstraint("account_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(index=True)
    number: int
    from_csm: str | None
    to_csm: str
    reason: str
    by: str
    at: datetime = Field(sa_type=UtcDateTime)


class AcademyGrant(SQLModel, table=True):
    """A user's access to the academy, with the courses of their account's path."""

    __table_args__ = (UniqueConstraint("account_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(index=True)
    email: str
    name: str
    courses: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    granted_at: datetime = Field(sa_type=UtcDateTime)


class PortalAccess(SQLModel, table=True):
    """An account's portal links issued before `revoked_before` no longer open
    (`starter.py portal-link ACCOUNT --revoke`); no row: every unexpired link opens."""

    __tablename__ = "portal_access"

    account_id: str = Field(primary_key=True)
    revoked_before: datetime = Field(sa_type=UtcDateTime)
    revoked_by: str
