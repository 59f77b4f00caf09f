"""Activities against real databases (SQLite file, PostgreSQL when TEST_DATABASE_URL is set)
and a real SMTP server: idempotent under retries, correct assignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.assign import AssignActivities
from activities.mail import FileOutbox, SmtpTransport
from activities.notify import NotifyActivities
from activities.records import RecordActivities
from config import Settings
from db import RosterEntry, make_engine, seed_roster, session_factory
from models.activities import (
    Checklist,
    CsmRequest,
    EmailRequest,
    MailContext,
    MailTemplate,
    OnboardingOpened,
    StageChange,
    TaskDue,
)
from models.journey import Stage, TouchModel
from models.tables import Csm, Notification, Onboarding, StageTransition, Task
from tests.conftest import Mailbox, deal

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
run = ActivityEnvironment().run


@pytest.fixture
def sessions(database_url: str):
    engine = make_engine(database_url)
    yield session_factory(engine)
    engine.dispose()


def open_account(sessions, account: str = "acme", touch_model: TouchModel = TouchModel.HIGH):
    request = deal("acme", account_id=account, touch_model=touch_model)
    run(
        RecordActivities(sessions).open_onboarding,
        OnboardingOpened(
            request=request, workflow_id=f"onboarding-{account}", playbook="standard", started_at=T0
        ),
    )


def roster(sessions, *entries: tuple[str, list[str]]) -> None:
    with sessions() as session:
        seed_roster(
            session,
            [
                RosterEntry(id=id_, name=id_, email=f"{id_}@example.com", touch_models=models)
                for id_, models in entries
            ],
        )


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


def test_assignment_picks_least_loaded_csm_serving_the_touch_model(sessions) -> None:
    roster(sessions, ("csm-b", ["high"]), ("csm-a", ["high"]), ("csm-t", ["tech"]))
    assign = AssignActivities(sessions)
    picks = []
    for account in ("one", "two", "three"):
        open_account(sessions, account)
        picks.append(run(assign.assign_csm, CsmRequest(account_id=account, touch_model="high")).id)
    # Ties go to the lower id; then to whoever has fewer active onboardings.
    assert picks == ["csm-a", "csm-b", "csm-a"]
    # A retried assignment keeps the CSM it already gave.
    again = run(assign.assign_csm, CsmRequest(account_id="two", touch_model="high"))
    assert again.id == "csm-b"
    with sessions() as session:
        assert session.get(Onboarding, "two").csm_id == "csm-b"


def test_assignment_waits_when_nobody_serves_the_touch_model(sessions) -> None:
    roster(sessions, ("csm-a", ["high"]))
    with sessions() as session:
        inactive = Csm(
            id="csm-x", name="x", email="x@example.com", touch_models=["community"], active=False
        )
        session.add(inactive)
        session.commit()
    open_account(sessions, "commune", TouchModel.COMMUNITY)
    with pytest.raises(ApplicationError) as error:
        run(
            AssignActivities(sessions).assign_csm,
            CsmRequest(account_id="commune", touch_model="community"),
        )
    assert "no active CSM serves touch model 'community'" in str(error.value)
    assert error.value.non_retryable is False  # retried until the roster has someone


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


def test_roster_seed_keeps_rows_edited_in_the_database(sessions) -> None:
    roster(sessions, ("csm-a", ["high"]))
    with sessions() as session:
        row = session.get(Csm, "csm-a")
        row.active = False
        session.add(row)
        session.commit()
    roster(sessions, ("csm-a", ["high"]), ("csm-b", ["low"]))
    with sessions() as session:
        assert session.get(Csm, "csm-a").active is False
        assert session.get(Csm, "csm-b") is not None


def test_naive_timestamps_are_refused(sessions) -> None:
    with sessions() as session, pytest.raises(Exception, match="naive datetime"):
        session.add(
            StageTransition(account_id="x", stage="depart", entered_at=datetime(2026, 1, 1))
        )
        session.commit()
