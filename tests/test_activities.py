"""The effects activity against real databases (SQLite file, PostgreSQL when
TEST_DATABASE_URL is set) and a real SMTP server: each batch can be carried out again (a
retry) without repeating anything, and a new run chain starts its row afresh."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.effects import EffectActivities
from activities.mail import FileOutbox, SmtpTransport, Transport
from activities.notify import Notify
from activities.records import Records
from infra.db import SessionFactory
from infra.settings import Settings
from models.activities import (
    AcademyAccess,
    Effects,
    Mail,
    MailContext,
    MailTemplate,
    OnboardingOpened,
    RowFacts,
    SupportTicketRecord,
    TaskDue,
)
from models.journey import Contact, Stage, StageVisit
from models.tables import (
    AcademyGrant,
    Notification,
    Onboarding,
    StageTransition,
    SupportTicket,
    Task,
)
from tests.conftest import T0, Mailbox, deal

DAY = timedelta(days=1)

run = ActivityEnvironment().run
QUEUE = Contact(name="CS queue", email="cs-queue@example.com")


def carrier(sessions: SessionFactory, transport: Transport, tmp_path: Path) -> EffectActivities:
    settings = Settings(outbox_dir=tmp_path)
    return EffectActivities(Records(sessions), Notify(sessions, transport, settings), QUEUE)


def opened(run_id: str = "run-1", started_at: datetime = T0) -> OnboardingOpened:
    return OnboardingOpened(
        request=deal("acme"),
        workflow_id="onboarding-acme",
        run_id=run_id,
        playbook="standard",
        started_at=started_at,
    )


def test_a_batch_carried_out_twice_records_everything_once(sessions, tmp_path: Path) -> None:
    effects = carrier(sessions, FileOutbox(tmp_path), tmp_path)
    signed = T0 + timedelta(days=3)
    first = Effects(
        account_id="acme",
        at=T0,
        opened=opened(),
        row=RowFacts(stage=Stage.DEPART),
        visits=[StageVisit(stage=Stage.DEPART, entered_at=T0)],
    )
    second = Effects(
        account_id="acme",
        at=signed,
        row=RowFacts(stage=Stage.HANDOFF, contract_signed_at=signed),
        visits=[
            StageVisit(stage=Stage.DEPART, entered_at=T0, exited_at=signed),
            StageVisit(stage=Stage.HANDOFF, entered_at=signed),
        ],
        tasks=[
            TaskDue(id="add-users", title="Add", owner="customer", required=True, due_at=signed),
        ],
        tickets=[SupportTicketRecord(account_id="acme", ticket="T-1", at=signed)],
    )
    for batch in (first, first, second, second):  # each one retried
        run(effects.carry_out, batch)

    with sessions() as session:
        rows = session.exec(select(StageTransition).order_by(StageTransition.entered_at)).all()
        assert [(r.stage, r.entered_at, r.exited_at) for r in rows] == [
            ("depart", T0, signed),
            ("handoff", signed, None),
        ]
        onboarding = session.get(Onboarding, "acme")
        assert (onboarding.stage, onboarding.contract_signed_at) == ("handoff", signed)
        assert onboarding.started_at == T0 and onboarding.closed_at is None
        assert [t.task_id for t in session.exec(select(Task))] == ["add-users"]
        assert [t.ticket for t in session.exec(select(SupportTicket))] == ["T-1"]


def test_the_end_closes_the_row_and_is_no_stage_to_spend_time_in(sessions, tmp_path) -> None:
    effects = carrier(sessions, FileOutbox(tmp_path), tmp_path)
    ended = T0 + timedelta(days=40)
    run(effects.carry_out, Effects(account_id="acme", at=T0, opened=opened()))
    run(
        effects.carry_out,
        Effects(
            account_id="acme",
            at=ended,
            row=RowFacts(stage=Stage.LAPSED, lapsed_at=ended, closed_at=ended),
            visits=[
                StageVisit(stage=Stage.DEPART, entered_at=T0, exited_at=ended),
                StageVisit(stage=Stage.LAPSED, entered_at=ended),
            ],
        ),
    )
    with sessions() as session:
        onboarding = session.get(Onboarding, "acme")
        assert (onboarding.stage, onboarding.lapsed_at, onboarding.closed_at) == (
            "lapsed",
            ended,
            ended,
        )
        assert [t.stage for t in session.exec(select(StageTransition))] == ["depart"]


def test_a_new_run_chain_starts_the_row_afresh_and_keeps_what_happened(
    sessions, tmp_path: Path
) -> None:
    """After a failed or terminated run, the onboarding starts again under the same id: its
    own row, stages and checklist; the academy access and tickets of the old one stay."""
    effects = carrier(sessions, FileOutbox(tmp_path), tmp_path)
    old = Effects(
        account_id="acme",
        at=T0,
        opened=opened("run-1"),
        row=RowFacts(stage=Stage.ADOPT, kickoff_at=T0),
        visits=[StageVisit(stage=Stage.DEPART, entered_at=T0)],
        tasks=[TaskDue(id="configure", title="C", owner="customer", required=True, due_at=T0)],
        grants=[AcademyAccess(account_id="acme", user=deal("acme").champion, courses=[], at=T0)],
        tickets=[SupportTicketRecord(account_id="acme", ticket="T-1", at=T0)],
    )
    run(effects.carry_out, old)
    restarted = T0 + timedelta(days=9)
    run(
        effects.carry_out,
        Effects(account_id="acme", at=restarted, opened=opened("run-2", restarted)),
    )

    with sessions() as session:
        onboarding = session.get(Onboarding, "acme")
        assert (onboarding.run_id, onboarding.stage, onboarding.started_at) == (
            "run-2",
            "depart",
            restarted,
        )
        assert onboarding.kickoff_at is None
        assert session.exec(select(StageTransition)).all() == []
        assert session.exec(select(Task)).all() == []
        assert len(session.exec(select(AcademyGrant)).all()) == 1
        assert len(session.exec(select(SupportTicket)).all()) == 1


def welcome(key: str = "onboarding-acme.0000aaaa:kickoff:welcome") -> Effects:
    request = deal("acme")
    return Effects(
        account_id="acme",
        at=T0,
        opened=opened(),
        context=MailContext(account=request),
        mails=[Mail(key=key, template=MailTemplate.WELCOME, to=request.champion)],
    )


def test_a_retried_batch_delivers_its_mail_once(
    sessions, smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, port = smtp
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")
    effects = carrier(sessions, SmtpTransport(settings), tmp_path)

    assert run(effects.carry_out, welcome()).delivered == [
        "onboarding-acme.0000aaaa:kickoff:welcome"
    ]
    assert run(effects.carry_out, welcome()).delivered == []

    assert mailbox.received() == ["onboarding-acme:kickoff:welcome"]
    with sessions() as session:
        rows = session.exec(select(Notification)).all()
        assert [(r.key, r.status, r.recipient) for r in rows] == [
            (
                "onboarding-acme.0000aaaa:kickoff:welcome",
                "sent",
                "kenji.mori@acme-logistics.example",
            )
        ]
        assert rows[0].sent_at is not None


def test_a_notice_with_nobody_to_go_to_reaches_the_queue_inbox(
    sessions, smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, port = smtp
    effects = carrier(
        sessions,
        SmtpTransport(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")),
        tmp_path,
    )
    batch = welcome()
    batch.mails = [
        Mail(
            key="onboarding-acme.0000aaaa:lapsed:notice",
            template=MailTemplate.CLOSED,
            to=None,
            note="x",
        )
    ]
    run(effects.carry_out, batch)
    assert mailbox.one("onboarding-acme:lapsed:notice")["To"].addresses[0].addr_spec == QUEUE.email


def test_customer_text_is_escaped_in_html_but_not_in_text(sessions, tmp_path: Path) -> None:
    effects = carrier(sessions, FileOutbox(tmp_path), tmp_path)
    batch = welcome("onboarding-acme:kickoff:welcome")
    assert batch.context is not None
    batch.context.account.account_name = "Smith & <Sons>"
    run(effects.carry_out, batch)

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
    access = AcademyAccess(
        account_id="acme",
        user=Contact(name="Ana Ruiz", email="Ana@Acme.example"),
        courses=["getting-started"],
        at=T0,
    )
    records = Records(sessions)
    records.open(opened())
    assert records.grant(access) is True
    assert records.grant(access) is False  # a retry
    with sessions() as session:
        rows = session.exec(select(AcademyGrant)).all()
        assert [(r.email, r.courses, r.granted_at) for r in rows] == [
            ("ana@acme.example", ["getting-started"], T0)
        ]


def test_a_late_batch_of_an_earlier_onboarding_of_the_account_changes_nothing(
    sessions, tmp_path: Path
) -> None:
    """A terminated run's attempt still retrying after the account started again must not
    write into the new onboarding, reset it, or mail its people."""
    effects = carrier(sessions, FileOutbox(tmp_path), tmp_path)
    run(effects.carry_out, Effects(account_id="acme", at=T0, opened=opened("run-1")))
    restarted = T0 + timedelta(days=9)
    run(
        effects.carry_out,
        Effects(account_id="acme", at=restarted, opened=opened("run-2", restarted)),
    )

    late_first = welcome()  # run-1's first batch, retried late: it opens and mails
    assert run(effects.carry_out, late_first).superseded
    late = Effects(
        account_id="acme",
        run_id="run-1",
        at=T0 + DAY,
        row=RowFacts(stage=Stage.ADOPT),
        tasks=[TaskDue(id="configure", title="C", owner="customer", required=True, due_at=T0)],
    )
    assert run(effects.carry_out, late).superseded
    with sessions() as session:
        onboarding = session.get(Onboarding, "acme")
        assert (onboarding.run_id, onboarding.stage) == ("run-2", "depart")
        assert session.exec(select(Task)).all() == []
        assert session.exec(select(Notification)).all() == []
