"""Activities against real databases (SQLite file, PostgreSQL when TEST_DATABASE_URL is set)
and a real SMTP server: idempotent under retries, correct assignment."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.mail import FileOutbox, SmtpTransport
from activities.notify import NotifyActivities
from activities.records import RecordActivities
from infra.settings import Settings
from models.activities import (
    AcademyAccess,
    Checklist,
    EmailRequest,
    MailContext,
    MailTemplate,
    StageChange,
    TaskDue,
)
from models.journey import Contact, Stage
from models.tables import AcademyGrant, Notification, Onboarding, StageTransition, Task
from tests.conftest import T0, Mailbox, deal, open_account

run = ActivityEnvironment().run


def test_stage_changes_are_recorded_once_with_entry_and_exit(sessions) -> None:
    records = RecordActivities(sessions)
    open_account(sessions)
    open_account(sessions)  # a retried start changes nothing
    first = StageChange(account_id="acme", stage=Stage.DEPART, previous=None, at=T0)
    signed = T0 + timedelta(days=3)
    second = StageChange(
        account_id="acme",
        stage=Stage.HANDOFF,
        previous=Stage.DEPART,
        at=signed,
        contract_signed_at=signed,
    )
    for change in (first, second, second):  # the last one is a retry
        run(records.record_stage, change)

    with sessions() as session:
        rows = session.exec(select(StageTransition).order_by(StageTransition.entered_at)).all()
        assert [(r.stage, r.entered_at, r.exited_at) for r in rows] == [
            ("depart", T0, signed),
            ("handoff", signed, None),
        ]
        onboarding = session.get(Onboarding, "acme")
        assert onboarding.stage == "handoff"
        assert onboarding.contract_signed_at == signed
        assert onboarding.started_at == T0
        assert session.exec(select(Onboarding)).all() == [onboarding]


def test_checklist_is_created_once(sessions) -> None:
    open_account(sessions)
    checklist = Checklist(
        account_id="acme",
        stage=Stage.KICKOFF,
        tasks=[
            TaskDue(
                id="add-users",
                title="Add users",
                owner="customer",
                required=True,
                due_at=T0 + timedelta(days=7),
            ),
            TaskDue(
                id="configure",
                title="Configure",
                owner="customer",
                required=True,
                due_at=T0 + timedelta(days=21),
            ),
        ],
    )
    records = RecordActivities(sessions)
    assert run(records.create_checklist, checklist).created == 2
    assert run(records.create_checklist, checklist).created == 0
    with sessions() as session:
        tasks = session.exec(select(Task).order_by(Task.due_at)).all()
        assert [(t.task_id, t.due_at) for t in tasks] == [
            ("add-users", T0 + timedelta(days=7)),
            ("configure", T0 + timedelta(days=21)),
        ]


def welcome_request() -> EmailRequest:
    request = deal("acme")
    return EmailRequest(
        key="onboarding-acme:kickoff:welcome",
        account_id="acme",
        template=MailTemplate.WELCOME,
        to=request.champion,
        context=MailContext(account=request),
    )


def test_a_retried_mail_is_delivered_once(
    sessions, smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, port = smtp
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, outbox_dir=tmp_path)
    notify = NotifyActivities(sessions, SmtpTransport(settings), settings)

    assert run(notify.send_email, welcome_request()).delivered is True
    assert run(notify.send_email, welcome_request()).delivered is False

    assert mailbox.received() == ["onboarding-acme:kickoff:welcome"]
    with sessions() as session:
        rows = session.exec(select(Notification)).all()
        assert [(r.key, r.status, r.recipient) for r in rows] == [
            ("onboarding-acme:kickoff:welcome", "sent", "kenji.mori@acme-logistics.example")
        ]
        assert rows[0].sent_at is not None


def test_customer_text_is_escaped_in_html_but_not_in_text(sessions, tmp_path: Path) -> None:
    settings = Settings(outbox_dir=tmp_path)
    notify = NotifyActivities(sessions, FileOutbox(tmp_path), settings)
    request = welcome_request()
    request.context.account.account_name = "Smith & <Sons>"
    run(notify.send_email, request)

    from email import message_from_bytes, policy

    message = message_from_bytes(
        (tmp_path / "onboarding-acme_kickoff_welcome.eml").read_bytes(), policy=policy.default
    )
    assert "Smith & <Sons>" in message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Smith &amp; &lt;Sons&gt;" in html and "<Sons>" not in html


def test_naive_timestamps_are_refused(sessions) -> None:
    with sessions() as session, pytest.raises(Exception, match="naive datetime"):
        session.add(
            StageTransition(account_id="x", stage="depart", entered_at=datetime(2026, 1, 1))
        )
        session.commit()


def test_academy_access_is_granted_once_per_user_however_often_it_is_retried(sessions) -> None:
    open_account(sessions)
    access = AcademyAccess(
        account_id="acme",
        user=Contact(name="Ana Ruiz", email="Ana@Acme.example"),
        courses=["getting-started"],
        at=T0,
    )
    records = RecordActivities(sessions)
    assert run(records.grant_academy_access, access) is True
    assert run(records.grant_academy_access, access) is False  # a retry
    with sessions() as session:
        rows = session.exec(select(AcademyGrant)).all()
        assert [(r.email, r.courses, r.granted_at) for r in rows] == [
            ("ana@acme.example", ["getting-started"], T0)
        ]
