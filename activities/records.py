"""Activities that write the onboarding's read model. Each is an idempotent upsert."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from infra.db import SessionFactory, onboarding_row
from models.activities import (
    AcademyAccess,
    Checklist,
    ChecklistResult,
    ChurnRecord,
    EscalationRecord,
    HandoffRecord,
    OnboardingOpened,
    RiskRecord,
    StageChange,
    SupportTicketRecord,
)
from models.tables import (
    AcademyGrant,
    EscalationLog,
    Onboarding,
    RiskChange,
    StageTransition,
    SupportTicket,
    Task,
)


class RecordActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    @activity.defn
    def open_onboarding(self, opened: OnboardingOpened) -> None:
        request = opened.request
        with self.sessions() as session:
            row = session.get(Onboarding, request.account_id) or Onboarding(
                account_id=request.account_id,
                stage="depart",
                started_at=opened.started_at,
                workflow_id=opened.workflow_id,
                account_name=request.account_name,
                plan=request.plan,
                touch_model=request.touch_model,
                industry=request.industry,
                use_case=request.use_case,
                contract_value=request.contract_value,
                playbook=opened.playbook,
                account_executive_id=request.account_executive.id,
                champion_email=str(request.champion.email),
            )
            session.add(row)
            session.commit()

    @activity.defn
    def record_stage(self, change: StageChange) -> None:
        with self.sessions() as session:
            row = onboarding_row(session, change.account_id)
            row.stage = change.stage
            for field in ("contract_signed_at", "kickoff_at", "first_value_at"):
                if (value := getattr(change, field)) is not None:
                    setattr(row, field, value)
            row.lapses_at = change.lapses_at
            if change.stage == "completed":
                row.completed_at = change.at
            if change.cancellation is not None:
                row.cancelled_at = change.cancellation.at
                row.cancel_reason = change.cancellation.reason
                row.cancel_note = change.cancellation.note
            if change.previous is not None:
                left = session.exec(
                    select(StageTransition).where(
                        StageTransition.account_id == change.account_id,
                        StageTransition.stage == change.previous,
                    )
                ).first()
                if left is not None and left.exited_at is None:
                    left.exited_at = change.at
                    session.add(left)
            entered = session.exec(
                select(StageTransition).where(
                    StageTransition.account_id == change.account_id,
                    StageTransition.stage == change.stage,
                )
            ).first()
            if entered is None and not change.stage.ended:
                session.add(
                    StageTransition(
                        account_id=change.account_id, stage=change.stage, entered_at=change.at
                    )
                )
            session.add(row)
            session.commit()

    @activity.defn
    def record_support_ticket(self, record: SupportTicketRecord) -> None:
        """Once per (account, ticket): a repeated signal or a retry adds nothing."""
        with self.sessions() as session:
            if session.exec(
                select(SupportTicket).where(
                    SupportTicket.account_id == record.account_id,
                    SupportTicket.ticket == record.ticket,
                )
            ).first():
                return
            session.add(
                SupportTicket(
                    account_id=record.account_id, ticket=record.ticket, opened_at=record.at
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()  # the same ticket, recorded by a concurrent attempt

    @activity.defn
    def record_risk(self, record: RiskRecord) -> None:
        with self.sessions() as session:
            exists = session.exec(
                select(RiskChange).where(
                    RiskChange.account_id == record.account_id, RiskChange.at == record.at
                )
            ).first()
            if exists is None:
                session.add(
                    RiskChange(
                        account_id=record.account_id,
                        level=record.risk.level,
                        reasons=record.risk.reasons,
                        at=record.at,
                    )
                )
                session.commit()

    @activity.defn
    def record_escalation(self, record: EscalationRecord) -> None:
        """Create or bring up to date the escalation's row (ladder level, acknowledgement)."""
        e = record.escalation
        with self.sessions() as session:
            row = session.exec(
                select(EscalationLog).where(
                    EscalationLog.account_id == record.account_id,
                    EscalationLog.number == e.number,
                )
            ).first() or EscalationLog(
                account_id=record.account_id, number=e.number, level=0, raised_at=e.raised_at
            )
            row.level, row.notified, row.reasons = e.level, e.notified, e.reasons
            row.acknowledged_at, row.acknowledged_by, row.note = (
                e.acknowledged_at,
                e.acknowledged_by,
                e.note,
            )
            session.add(row)
            session.commit()

    @activity.defn
    def record_handoff(self, handoff: HandoffRecord) -> None:
        with self.sessions() as session:
            row = onboarding_row(session, handoff.account_id)
            row.csm_id = handoff.csm_id
            row.handoff_notes = handoff.notes
            session.add(row)
            session.commit()

    @activity.defn
    def create_checklist(self, checklist: Checklist) -> ChecklistResult:
        """Create the checklist rows, or bring their due and done dates up to date."""
        created = 0
        for task in checklist.tasks:
            with self.sessions() as session:
                row = session.exec(
                    select(Task).where(
                        Task.account_id == checklist.account_id, Task.task_id == task.id
                    )
                ).first()
                if row is not None:
                    row.due_at, row.done_at = task.due_at, task.done_at
                    session.add(row)
                    session.commit()
                    continue
                session.add(
                    Task(
                        account_id=checklist.account_id,
                        task_id=task.id,
                        stage=task.stage,
                        title=task.title,
                        owner=task.owner,
                        required=task.required,
                        due_at=task.due_at,
                        done_at=task.done_at,
                    )
                )
                try:
                    session.commit()
                    created += 1
                except IntegrityError:
                    # Created meanwhile by a concurrent attempt: the unique key did its job.
                    session.rollback()
        return ChecklistResult(created=created)

    @activity.defn
    def grant_academy_access(self, access: AcademyAccess) -> bool:
        """Record the user's access to the academy; False when they already had it."""
        email = str(access.user.email).lower()
        with self.sessions() as session:
            exists = session.exec(
                select(AcademyGrant).where(
                    AcademyGrant.account_id == access.account_id, AcademyGrant.email == email
                )
            ).first()
            if exists is not None:
                return False
            session.add(
                AcademyGrant(
                    account_id=access.account_id,
                    email=email,
                    name=access.user.name,
                    courses=access.courses,
                    granted_at=access.at,
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()  # granted meanwhile by a concurrent attempt
                return False
            return True

    @activity.defn
    def record_churn(self, record: ChurnRecord) -> None:
        """The customer left (the retention KPI counts from this); the first record stands."""
        with self.sessions() as session:
            row = onboarding_row(session, record.account_id)
            if row.churned_at is None:
                row.churned_at = record.churn.at
                row.churn_reason = record.churn.reason
                row.churn_note = record.churn.note
                session.add(row)
                session.commit()
