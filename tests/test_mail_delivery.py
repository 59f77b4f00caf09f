"""The mail guarantee, in its hard cases, against a real SMTP server on loopback that counts
deliveries and real databases: attempts that overlap, a mark that fails after the server took
the message (the one window no sender can close), and messages that can never go."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlmodel import select
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities import notify
from activities.mail import FileOutbox, MailDeferred, SmtpTransport
from activities.notify import MailBusy, Notify
from infra.db import SessionFactory, make_engine, session_factory
from infra.settings import Settings
from models.activities import Mail, MailContext, MailTemplate
from models.journey import Contact
from models.tables import Notification, utcnow
from tests.conftest import Mailbox, deal, eventually, free_port, onboarding_input
from worker import build_worker
from workflows.onboarding import OnboardingWorkflow

KEY = "onboarding-acme.0000aaaa:kickoff:welcome"
REQUEST = deal("acme")


def notifier(sessions: SessionFactory, port: int) -> Notify:
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")
    return Notify(sessions, SmtpTransport(settings), settings)


def send(n: Notify, to: Contact = REQUEST.champion, key: str = KEY) -> notify.Outcome:
    mail = Mail(key=key, template=MailTemplate.WELCOME, to=to)
    return n.send_email(mail, MailContext(account=REQUEST), "acme", to)


def row(sessions: SessionFactory, key: str = KEY) -> Notification:
    with sessions() as session:
        return session.exec(select(Notification).where(Notification.key == key)).one()


def lease_runs_out(sessions: SessionFactory) -> None:
    """As if LEASE had passed: the attempt holding the claim is taken for dead."""
    with sessions() as session:
        session.exec(  # type: ignore[call-overload]
            update(Notification).values(lease_until=utcnow() - timedelta(seconds=1))
        )
        session.commit()


class FailingDatabase:
    """Sessions that fail while the outbox's `sent` mark is written, `times` times (the
    database dropped the connection), then work again."""

    def __init__(self, sessions: SessionFactory, times: int) -> None:
        self.sessions, self.times, self.marking = sessions, times, False

    def __call__(self):  # type: ignore[no-untyped-def]
        if self.marking and self.times:
            self.times -= 1
            raise OperationalError("UPDATE notification", {}, ConnectionError("server closed"))
        return self.sessions()


def marks_fail(n: Notify, times: int) -> None:
    database = FailingDatabase(n.sessions, times)
    mark = n._mark_sent

    def failing_mark(key: str, token: str) -> None:
        database.marking = True
        try:
            mark(key, token)
        finally:
            database.marking = False

    n._mark_sent = failing_mark  # type: ignore[method-assign]
    n.sessions = database  # type: ignore[assignment]


def wait_until(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_an_attempt_that_overlaps_one_still_sending_does_not_send(
    sessions, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    first, second = notifier(sessions, port), notifier(sessions, port)
    mailbox.open.clear()  # the first attempt's delivery hangs in the server
    outcome: list[notify.Outcome] = []
    sending = threading.Thread(target=lambda: outcome.append(send(first)))
    sending.start()
    wait_until(lambda: mailbox.held == 1)

    with pytest.raises(MailBusy, match="claimed by another attempt") as busy:
        send(second)  # e.g. the retry of an attempt that timed out while still sending
    # Tried again when the claim runs out, not on the backoff's schedule.
    assert busy.value.next_retry_delay is not None
    assert timedelta(minutes=9) < busy.value.next_retry_delay <= notify.LEASE + timedelta(seconds=1)

    mailbox.open.set()
    sending.join()
    assert outcome[0].sent
    assert send(second) == notify.Outcome()  # sent: a later retry sends nothing
    assert mailbox.received() == ["onboarding-acme:kickoff:welcome"]


def test_a_mark_that_fails_for_a_moment_does_not_send_twice(
    sessions, smtp: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox, port = smtp
    monkeypatch.setattr(notify, "MARK_RETRIES", (0.01, 0.01, 0.01))
    n = notifier(sessions, port)
    marks_fail(n, times=2)

    assert send(n).sent
    assert send(n) == notify.Outcome()
    assert mailbox.received() == ["onboarding-acme:kickoff:welcome"]
    assert row(sessions).status == "sent"


def test_the_crash_window_sends_again_under_the_same_message_id(
    sessions, smtp: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database stays away past every retry of the mark after the server took the
    message: the attempt fails, and once its lease runs out the retry sends again. The only
    duplicate the README allows; the receiving side can drop it by its Message-ID."""
    mailbox, port = smtp
    monkeypatch.setattr(notify, "MARK_RETRIES", (0.01,))
    crashing = notifier(sessions, port)
    marks_fail(crashing, times=10)
    with pytest.raises(OperationalError):
        send(crashing)
    retry = notifier(sessions, port)
    with pytest.raises(MailBusy):
        send(retry)  # the lease still holds: the first attempt might be alive
    lease_runs_out(sessions)

    assert send(retry).sent
    assert send(retry) == notify.Outcome()
    assert mailbox.received() == ["onboarding-acme:kickoff:welcome"] * 2
    assert len({m["Message-ID"] for m in mailbox.messages}) == 1
    assert (row(sessions).status, row(sessions).attempts) == ("sent", 2)


def test_an_attempt_that_died_before_sending_leaves_the_mail_to_its_retry(
    sessions, smtp: tuple[Mailbox, int]
) -> None:
    """It died (or lost the server) where nobody can tell whether the message went: its
    claim holds until the lease runs out, then the retry sends."""
    mailbox, port = smtp
    dead = notifier(sessions, port)
    dead.transport = Unknowable()
    with pytest.raises(TimeoutError):
        send(dead)
    with pytest.raises(MailBusy):
        send(notifier(sessions, port))
    lease_runs_out(sessions)
    assert send(notifier(sessions, port)).sent
    assert mailbox.received() == ["onboarding-acme:kickoff:welcome"]


class Unknowable:
    def send(self, message: object) -> None:
        raise TimeoutError("timed out waiting for the server's answer to the message")


def test_a_mail_server_that_is_down_holds_nothing_up_once_it_is_back(
    sessions, smtp: tuple[Mailbox, int]
) -> None:
    """Nothing reached a server that refused the connection: the claim is released at once,
    and the retry sends without waiting for the lease."""
    mailbox, port = smtp
    with pytest.raises(MailDeferred, match="cannot get through to the mail server"):
        send(notifier(sessions, free_port()))  # nothing listens there
    assert row(sessions).status == "pending"
    assert send(notifier(sessions, port)).sent
    assert mailbox.received() == ["onboarding-acme:kickoff:welcome"]


def test_a_recipient_refused_for_good_fails_once_and_is_not_retried(
    sessions, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    mailbox.refuse.add(str(REQUEST.champion.email))
    n = notifier(sessions, port)

    outcome = send(n)
    assert outcome.failure is not None
    assert outcome.failure.error_type == "RecipientRefused"
    assert outcome.failure.reason == "the mail server refused the recipient (550)"
    assert str(REQUEST.champion.email) not in outcome.failure.reason
    mailbox.refuse.clear()
    assert send(n).failure == outcome.failure  # a retried batch does not send it after all
    assert mailbox.messages == []
    assert (row(sessions).status, row(sessions).error_type) == ("failed", "RecipientRefused")


def test_a_name_with_a_line_break_fails_as_an_invalid_header(
    sessions, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    broken = REQUEST.champion.model_copy(update={"name": "Kenji\nBcc: x@evil.example"})
    outcome = send(notifier(sessions, port), to=broken)
    assert outcome.failure is not None and outcome.failure.error_type == "InvalidHeader"
    assert mailbox.messages == []
    assert row(sessions).status == "failed"


def test_a_file_outbox_names_files_safely_and_leaves_no_temporary_files(
    sessions, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    n = Notify(sessions, FileOutbox(outbox), Settings(outbox_dir=outbox))
    assert send(n, key="onboarding-acme.0000aaaa:odd/../key").sent
    assert [p.name for p in outbox.iterdir()] == ["onboarding-acme.0000aaaa_odd_.._key.eml"]


def test_a_deferred_recipient_is_retried_and_its_error_names_no_address(
    sessions, smtp: tuple[Mailbox, int]
) -> None:
    """Greylisting (450): retried by the activity; smtplib's own error quotes the address,
    which would reach the worker's log with the failed attempt."""
    mailbox, port = smtp
    mailbox.defer.add(str(REQUEST.champion.email))
    with pytest.raises(MailDeferred) as deferred:
        send(notifier(sessions, port))
    assert str(deferred.value) == "the mail server deferred the recipient (450)"
    assert deferred.value.__cause__ is None and deferred.value.__context__ is not None
    mailbox.defer.clear()
    assert send(notifier(sessions, port)).sent  # released: no lease to wait for
    assert mailbox.received() == ["onboarding-acme:kickoff:welcome"]


def test_a_chat_service_that_keeps_refusing_becomes_a_failure_not_a_stall(
    sessions, tmp_path: Path
) -> None:
    dead = f"json://127.0.0.1:{free_port()}/"  # nothing listens: every post fails
    settings = Settings(outbox_dir=tmp_path / "outbox", chat_urls=[dead])
    n = Notify(sessions, FileOutbox(tmp_path / "outbox"), settings)
    mail = Mail(key=KEY, template=MailTemplate.CLOSED, to=None, chat=True, note="lapsed")
    context = MailContext(account=REQUEST)

    early = ActivityEnvironment()
    with pytest.raises(MailDeferred, match="chat delivery failed"):
        early.run(n.send_chat, mail, context, "acme")
    late = ActivityEnvironment()
    late.info = dataclasses.replace(late.info, attempt=notify.CHAT_ATTEMPTS)
    outcome = late.run(n.send_chat, mail, context, "acme")
    assert outcome.failure is not None and outcome.failure.error_type == "ChatUndeliverable"


async def test_a_worker_stopped_mid_delivery_records_what_it_sent(
    client: Client, settings: Settings, task_queue: str, mailbox: Mailbox
) -> None:
    """Shut down with no grace at all: the SDK raises its cancel into the activity's thread
    while the SMTP server holds the message. The cancel waits until the outbox says `sent`,
    so no later attempt sends it again."""
    mailbox.open.clear()
    with ThreadPoolExecutor(max_workers=4) as executor:
        worker = build_worker(
            client,
            settings,
            executor,
            task_queue=task_queue,
            activity_threads=4,
            graceful_shutdown=timedelta(0),
        )
        running = asyncio.create_task(worker.run())
        await client.start_workflow(
            OnboardingWorkflow.run,
            onboarding_input(REQUEST),
            id="onboarding-acme",
            task_queue=task_queue,
        )
        await eventually(lambda: mailbox.held == 1)
        stopping = asyncio.create_task(worker.shutdown())
        await asyncio.sleep(0.5)  # the cancel is raised into the thread meanwhile
        mailbox.open.set()
        await stopping
        await running
    key = str(mailbox.messages[0]["X-Onboarding-Key"])
    assert row(session_factory(make_engine(settings.database_url)), key).status == "sent"
    assert mailbox.received() == ["onboarding-acme:depart:what-to-expect"]


def test_a_domain_in_another_script_is_sent_in_its_ascii_form(
    sessions, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    jurgen = Contact(name="Jürgen Müller", email="jurgen@müller.example")
    assert send(notifier(sessions, port), to=jurgen).sent
    assert mailbox.messages[0]["To"].addresses[0].addr_spec == "jurgen@xn--mller-kva.example"
