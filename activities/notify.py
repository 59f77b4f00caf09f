"""Mail and chat: render, claim in the outbox, deliver, mark. Plain methods, called by the
effects activity (activities/effects.py).

The guarantee (README: Side effects): a message is delivered at most once per business key,
except in one window no sender can close — the process dies (or loses its database for
longer than `MARK_RETRIES` allow) after the server accepted the message and before the
outbox says `sent`. Then the message goes again once the claim's lease has run out, under the
same `Message-ID`, so the receiving side can drop it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import apprise
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import OperationalError
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.mail import (
    MailDeferred,
    MailRefused,
    Transport,
    build_message,
    facts,
    locale_for,
    permanent_failure,
    recipient_role,
    render,
    template_environment,
    timezone_for,
    variables,
    voice,
)
from infra import i18n
from infra.db import SessionFactory, commit_once
from infra.settings import Settings
from models.activities import CUSTOMER, Mail, MailContext, Role
from models.journey import Contact
from models.tables import Notification, utcnow
from portal import links

log = activity.logger  # with the run and attempt, when called in an activity

# How long a claim stays another attempt's: longer than one attempt can take between claim
# and mark (SMTP's 30 s per operation over a handful of operations, plus the mark's retries),
# so a claim still held means its attempt may still be sending; an expired one, that it died.
LEASE = timedelta(minutes=10)
# The mark after a delivery is retried in the attempt (a dropped database connection is
# usually back within seconds): every failed mark is a message the retry would send again.
MARK_RETRIES = (0.5, 1, 2, 4, 8)


Send = Callable[[], None]


# A chat service that refuses this many attempts in a row is taken as broken for this
# message (a revoked webhook): it becomes an incident instead of holding up the batch.
CHAT_ATTEMPTS = 10


class MailBusy(ApplicationError):
    """Another attempt holds this message's claim: the activity retries later (retryable,
    and benign: logged without alarm)."""

    def __init__(self, message: str, until: datetime | None = None) -> None:
        # Retry when the claim runs out, not on the backoff's schedule (which can be minutes
        # later): a message whose attempt died goes as soon as that is certain.
        wait = max(until - utcnow(), timedelta(0)) + timedelta(seconds=1) if until else None
        super().__init__(
            message,
            type="MailBusy",
            category=ApplicationErrorCategory.BENIGN,
            next_retry_delay=wait,
        )


def _shielded() -> AbstractContextManager[None]:
    """Hold a cancel (worker shutdown, heartbeat timeout) off until the block is done: between
    a delivery and its mark, an exception raised into the thread would leave a sent message
    looking unsent."""
    return activity.shield_thread_cancel_exception() if activity.in_activity() else nullcontext()


@dataclass(frozen=True)
class Failure:
    """A message that can never go as it is (refused, invalid, template error)."""

    key: str
    error_type: str
    reason: str
    """Free of personal data: the server's own words can quote the address, so not those."""


@dataclass(frozen=True)
class Outcome:
    sent: bool = False
    failure: Failure | None = None


class Notify:
    def __init__(self, sessions: SessionFactory, transport: Transport, settings: Settings) -> None:
        self.sessions = sessions
        self.transport = transport
        self.settings = settings
        # One environment per language: each has its catalog installed.
        self.templates = {locale: template_environment(locale) for locale in i18n.SUPPORTED_LOCALES}
        self.chat = apprise.Apprise()
        for number, url in enumerate(settings.chat_urls.get_secret_value(), start=1):
            if not self.chat.add(url):
                # The URL carries the webhook's token: name its position, never the URL.
                raise ValueError(f"CHAT_URLS: apprise does not understand URL #{number}")

    def _links(self) -> dict[str, str]:
        s = self.settings
        return {
            "app": s.app_url,
            "academy": s.academy_url,
            "help": s.help_url,
            "exit_survey": s.exit_survey_url,
        }

    def _portal_url(self, role: Role, account_id: str, to: Contact) -> str | None:
        """The reader's own link to the account's portal page (customers only; none without
        a portal secret). Signed as the mail is rendered: never in Temporal's history."""
        s = self.settings
        secret = s.portal_key()
        if role not in CUSTOMER or secret is None:
            return None
        valid_for = timedelta(days=s.portal_link_days)
        token = links.issue(secret, account_id, str(to.email), datetime.now(UTC), valid_for)
        return f"{s.portal_url}/portal/{token}"

    def send_email(self, mail: Mail, context: MailContext, account_id: str, to: Contact) -> Outcome:
        """Deliver one message at most once per key (see the module's docstring)."""

        def draft() -> tuple[Notification, Send]:
            s = self.settings
            role = recipient_role(mail, context, to)
            locale = locale_for(role, context, s.internal_locale)
            rendered = render(
                self.templates[locale],
                mail.template,
                variables(
                    mail,
                    context,
                    to,
                    links=self._links(),
                    default_currency=s.default_currency,
                    locale=locale,
                    timezone=timezone_for(role, context, s.default_timezone),
                    portal_url=self._portal_url(role, account_id, to),
                ),
            )
            message = build_message(
                rendered,
                key=mail.key,
                sender=s.mail_from,
                to=to,
                cc=mail.cc,
                voice=voice(mail, context, to, locale),
                reply_to=mail.reply_to,
            )
            row = Notification(
                key=mail.key,
                account_id=account_id,
                template=mail.template,
                recipient=str(to.email),
                subject=rendered.subject,
                body_text=rendered.text,
            )
            return row, lambda: self.transport.send(message)

        return self._deliver(mail.key, account_id, draft)

    def send_chat(self, mail: Mail, context: MailContext, account_id: str) -> Outcome:
        """Post the message's chat version to the team's chat, once per key (`{key}:chat`);
        nothing when no chat is configured (CHAT_URLS)."""
        if not self.settings.chat_urls.get_secret_value():
            return Outcome()
        key = f"{mail.key}:chat"

        def draft() -> tuple[Notification, Send]:
            s = self.settings
            rendered = render(
                self.templates[i18n.supported(s.internal_locale)],  # the team's language
                mail.template,
                context.model_dump()
                | facts(context, s.default_currency)
                | {"links": self._links(), "timezone": s.default_timezone},
                kind="chat",
            )
            row = Notification(
                key=key,
                account_id=account_id,
                channel="chat",
                template=mail.template,
                recipient="chat",
                subject=rendered.subject,
                body_text=rendered.text,
            )

            def post() -> None:
                if self.chat.notify(title=rendered.subject, body=rendered.text):
                    return
                attempt = activity.info().attempt if activity.in_activity() else 1
                if attempt >= CHAT_ATTEMPTS:
                    raise MailRefused(
                        "ChatUndeliverable", f"the chat service refused {attempt} attempts"
                    )
                # Retried by the activity's policy; apprise has logged which service.
                raise MailDeferred(f"chat delivery failed for {key}")

            return row, post

        return self._deliver(key, account_id, draft)

    def _deliver(
        self, key: str, account_id: str, draft: Callable[[], tuple[Notification, Send]]
    ) -> Outcome:
        try:
            row, send = draft()
        except Exception as error:
            failure = permanent_failure(error)
            if failure is None:
                raise
            return self._failed(key, None, Failure(key, *failure), account_id)
        token = uuid.uuid4().hex
        claimed = self._claim(row, token)
        if claimed is not None:
            return claimed
        with _shielded():
            try:
                send()
            except MailRefused as refused:
                return self._failed(
                    key, token, Failure(key, refused.error_type, refused.reason), account_id
                )
            except MailDeferred:
                self._release(key, token)  # not sent: the retry need not wait for the lease
                raise
            self._mark_sent(key, token)
        log.info("mail %s sent", key)
        return Outcome(sent=True)

    def _claim(self, row: Notification, token: str) -> Outcome | None:
        """Take the message's claim for this attempt (None), or say why not: sent or failed
        before (an Outcome), or held by a live attempt (MailBusy, retried)."""
        now = utcnow()
        row.status, row.claimed_by, row.lease_until, row.attempts = "sending", token, now + LEASE, 1
        with self.sessions() as session:
            session.add(row)
            if commit_once(session):
                return None
        with self.sessions() as session:
            # Atomic: of two attempts racing for an expired claim, one row update wins.
            taken = session.exec(  # type: ignore[call-overload]
                update(Notification)
                .where(Notification.key == row.key)  # type: ignore[arg-type]
                .where(
                    or_(
                        Notification.status == "pending",  # type: ignore[arg-type]
                        and_(Notification.status == "sending", Notification.lease_until < now),  # type: ignore[arg-type,operator]
                    )
                )
                .values(
                    status="sending",
                    claimed_by=token,
                    lease_until=now + LEASE,
                    attempts=Notification.attempts + 1,
                )
            )
            session.commit()
            if taken.rowcount == 1:
                return None
            found = session.exec(select(Notification).where(Notification.key == row.key)).one()
        if found.status == "sent":
            return Outcome()
        if found.status == "failed":
            return Outcome(failure=Failure(row.key, found.error_type or "", found.error or ""))
        raise MailBusy(
            f"{row.key} is claimed by another attempt until {found.lease_until}",
            found.lease_until,
        )

    def _release(self, key: str, token: str) -> None:
        with self.sessions() as session:
            session.exec(  # type: ignore[call-overload]
                update(Notification)
                .where(Notification.key == key, Notification.claimed_by == token)  # type: ignore[arg-type]
                .values(status="pending", lease_until=None)
            )
            session.commit()

    def _mark_sent(self, key: str, token: str) -> None:
        for pause in (*MARK_RETRIES, None):
            try:
                with self.sessions() as session:
                    marked = session.exec(  # type: ignore[call-overload]
                        update(Notification)
                        .where(Notification.key == key, Notification.claimed_by == token)  # type: ignore[arg-type]
                        .values(status="sent", sent_at=utcnow(), lease_until=None)
                    )
                    session.commit()
                if marked.rowcount == 0:  # only if this attempt outlived its lease
                    log.warning("mail %s: sent after its claim ran out", key)
                return
            except OperationalError:
                if pause is None:
                    raise
                log.warning("mail %s sent; recording it failed, retrying in %ss", key, pause)
                time.sleep(pause)

    def _failed(self, key: str, token: str | None, failure: Failure, account_id: str) -> Outcome:
        """Record that the message cannot go, so no attempt tries it again: the onboarding
        raises an incident, and a retry after the data is fixed sends it under a new key."""
        with self.sessions() as session:
            row = session.exec(select(Notification).where(Notification.key == key)).first()
            if row is not None and row.status == "sent":
                return Outcome()  # sent before the template broke (a retried old batch)
            if row is not None and token is not None and row.claimed_by != token:
                raise MailBusy(f"{key}: the claim was lost while sending")
            live = row is not None and row.lease_until is not None and row.lease_until > utcnow()
            if token is None and row is not None and row.status == "sending" and live:
                raise MailBusy(
                    f"{key} is claimed by another attempt until {row.lease_until}", row.lease_until
                )
            if row is None:  # it failed before it could be claimed (rendering)
                row = Notification(
                    key=key,
                    account_id=account_id,
                    template="",
                    recipient="",
                    subject="",
                    body_text="",
                )
            row.status, row.error_type, row.error = "failed", failure.error_type, failure.reason
            row.lease_until = None
            session.add(row)
            commit_once(session)  # False: a racing attempt recorded the same failure first
        log.warning("mail %s failed for good (%s): %s", key, failure.error_type, failure.reason)
        return Outcome(failure=failure)
