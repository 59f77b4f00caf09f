"""The onboarding's read model: idempotent writes on business keys. Plain methods, called by
the effects activity (activities/effects.py) in the order a batch lists them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import SQLModel, col, select

from infra.db import SessionFactory, commit_once, onboarding_row
from models.activities import (
    AcademyAccess,
    HandoffRecord,
    OnboardingOpened,
    RowFacts,
    SupportTicketRecord,
    TaskDue,
)
from models.everboarding import Churn
from models.journey import Escalation, RiskAssessment, StageVisit
from models.tables import (
    AcademyGrant,
    EscalationLog,
    Onboarding,
    Reassignment,
    RiskChange,
    StageTransition,
    SupportTicket,
    Task,
)

# What belongs to one onboarding run and goes when a new one starts afresh. Academy access,
# support tickets and sent mail stay: they happened.
PER_RUN: list[type[SQLModel]] = [StageTransition, Task, RiskChange, EscalationLog, Reassignment]


class Records:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    def open(self, opened: OnboardingOpened) -> bool:
        """Create the row; a retry finds it as it left it. A new run chain (the onboarding
        started again after a failed or terminated one) starts it afresh. False when the row
        belongs to a newer chain already (a late retry of an old chain's first batch)."""
        request = opened.request
        with self.sessions() as session:
            row = session.get(Onboarding, request.account_id)
            if row is not None and row.run_id == opened.run_id:
                return True
            if row is not None and row.started_at > opened.started_at:
                return False
            if row is not None:
                for table in PER_RUN:
                    session.execute(
                        delete(table).where(col(table.account_id) == request.account_id)  # type: ignore[attr-defined]
                    )
                session.delete(row)
                session.flush()
            session.add(
                Onboarding(
                    account_id=request.account_id,
                    stage="depart",
                    started_at=opened.started_at,
                    workflow_id=opened.workflow_id,
                    run_id=opened.run_id,
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
            )
            session.commit()
            return True

    def belongs_to(self, account_id: str, run_id: str) -> bool:
        """The account's row is this run chain's (not a newer onboarding's)."""
        with self.sessions() as session:
            row = session.get(Onboarding, account_id)
            return row is None or row.run_id in (run_id, None)

    def row(self, account_id: str, facts: RowFacts) -> None:
        """The row says what the workflow says (stage, milestone dates, the end)."""
        with self.sessions() as session:
            row = onboarding_row(session, account_id)
            row.stage = facts.stage
            for field in ("contract_signed_at", "kickoff_at", "first_value_at", "lapses_at"):
                setattr(row, field, getattr(facts, field))
            row.completed_at = facts.completed_at
            row.lapsed_at = facts.lapsed_at
            row.closed_at = facts.closed_at
            if facts.cancellation is not None:
                row.cancelled_at = facts.cancellation.at
                row.cancel_reason = facts.cancellation.reason
                row.cancel_note = facts.cancellation.note
            session.add(row)
            session.commit()

    def visits(self, account_id: str, visits: list[StageVisit]) -> None:
        """When each stage was entered and left (the ends are not stages one spends time in)."""
        with self.sessions() as session:
            for visit in visits:
                if visit.stage.ended:
                    continue
                found = session.exec(
                    select(StageTransition).where(
                        StageTransition.account_id == account_id,
                        StageTransition.stage == visit.stage,
                    )
                ).first() or StageTransition(
                    account_id=account_id, stage=visit.stage, entered_at=visit.entered_at
                )
                found.exited_at = visit.exited_at
                session.add(found)
            session.commit()

    def handoff(self, handoff: HandoffRecord) -> None:
        with self.sessions() as session:
            row = onboarding_row(session, handoff.account_id)
            row.handoff_notes = handoff.notes
            session.add(row)
            session.commit()

    def tasks(self, account_id: str, tasks: list[TaskDue]) -> None:
        """Create the checklist rows, or bring their due and done dates up to date."""
        with self.sessions() as session:
            for task in tasks:
                row = session.exec(
                    select(Task).where(Task.account_id == account_id, Task.task_id == task.id)
                ).first() or Task(
                    account_id=account_id,
                    task_id=task.id,
                    stage=task.stage,
                    title=task.title,
                    owner=task.owner,
                    required=task.required,
                    due_at=task.due_at,
                )
                # A newer playbook may retitle an open task, change its owner or stage.
                row.title, row.owner, row.required = task.title, task.owner, task.required
                row.stage = task.stage
                row.due_at, row.done_at = task.due_at, task.done_at
                session.add(row)
            # A concurrent attempt inserted one of them: fail, and the retry updates it.
            session.commit()

    def remove_tasks(self, account_id: str, task_ids: list[str]) -> None:
        """Take tasks a newer playbook dropped off the checklist (gone already: nothing)."""
        with self.sessions() as session:
            session.exec(  # type: ignore[call-overload]
                delete(Task).where(
                    col(Task.account_id) == account_id, col(Task.task_id).in_(task_ids)
                )
            )
            session.commit()

    def grant(self, access: AcademyAccess) -> bool:
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
            return commit_once(session)

    def ticket(self, record: SupportTicketRecord) -> None:
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
            commit_once(session)

    def risk(self, account_id: str, risk: RiskAssessment, at: datetime) -> None:
        """A change of risk level, once per moment."""
        with self.sessions() as session:
            exists = session.exec(
                select(RiskChange).where(RiskChange.account_id == account_id, RiskChange.at == at)
            ).first()
            if exists is None:
                session.add(
                    RiskChange(account_id=account_id, level=risk.level, reasons=risk.reasons, at=at)
                )
                commit_once(session)

    def escalation(self, account_id: str, e: Escalation) -> None:
        """Create or bring up to date the escalation's row (ladder level, acknowledgement)."""
        with self.sessions() as session:
            row = session.exec(
                select(EscalationLog).where(
                    EscalationLog.account_id == account_id, EscalationLog.number == e.number
                )
            ).first() or EscalationLog(
                account_id=account_id, number=e.number, level=0, raised_at=e.raised_at
            )
            row.level, row.notified, row.reasons = e.level, e.notified, e.reasons
            row.acknowledged_at, row.acknowledged_by, row.note = (
                e.acknowledged_at,
                e.acknowledged_by,
                e.note,
            )
            session.add(row)
            session.commit()

    def churn(self, account_id: str, churn: Churn) -> None:
        """The customer left (the retention KPI counts from this); the first record stands."""
        with self.sessions() as session:
            row = onboarding_row(session, account_id)
            if row.churned_at is None:
                row.churned_at = churn.at
                row.churn_reason = churn.reason
                row.churn_note = churn.note
                session.add(row)
                session.commit()
