"""Mail and chat: render, record in the outbox, deliver once per business key. Plain methods,
called by the effects activity (activities/effects.py)."""

from __future__ import annotations

import apprise
from sqlmodel import select
from temporalio import activity

from activities.mail import Transport, build_message, render, template_environment
from infra.db import SessionFactory, commit_once
from infra.settings import Settings
from models.activities import Mail, MailContext
from models.journey import Contact
from models.tables import Notification, utcnow


class Notify:
    def __init__(self, sessions: SessionFactory, transport: Transport, settings: Settings) -> None:
        self.sessions = sessions
        self.transport = transport
        self.settings = settings
        self.templates = template_environment()
        self.chat = apprise.Apprise()
        for url in settings.chat_urls:
            if not self.chat.add(url):
                raise ValueError(f"CHAT_URLS: apprise does not understand {url!r}")

    def _links(self) -> dict[str, str]:
        s = self.settings
        return {
            "app": s.app_url,
            "academy": s.academy_url,
            "help": s.help_url,
            "exit_survey": s.exit_survey_url,
        }

    def _claim(self, row: Notification) -> bool:
        """Write the outbox row `pending`; False when this key was already sent. (An attempt
        that overlaps another still sending finds it `pending` and sends too: only the mark
        `sent` stops a resend.)"""
        with self.sessions() as session:
            found = session.exec(select(Notification).where(Notification.key == row.key)).first()
            if found is not None:
                return found.status != "sent"
            session.add(row)
            return commit_once(session)

    def _mark_sent(self, key: str) -> None:
        with self.sessions() as session:
            row = session.exec(select(Notification).where(Notification.key == key)).one()
            row.status = "sent"
            row.sent_at = utcnow()
            session.add(row)
            session.commit()

    def send_email(self, mail: Mail, context: MailContext, account_id: str, to: Contact) -> bool:
        """Deliver one message once per key; False when it was sent before (a retry, a
        replay, an overlapping attempt)."""
        rendered = render(
            self.templates,
            mail.template,
            context.model_dump() | {"recipient": to.model_dump(), "links": self._links()},
        )
        claimed = self._claim(
            Notification(
                key=mail.key,
                account_id=account_id,
                template=mail.template,
                recipient=str(to.email),
                subject=rendered.subject,
                body_text=rendered.text,
            )
        )
        if not claimed:
            return False
        message = build_message(
            rendered, key=mail.key, sender=self.settings.mail_from, to=to, cc=mail.cc
        )
        self.transport.send(message)
        self._mark_sent(mail.key)
        activity.logger.info("mail %s sent", mail.key)
        return True

    def send_chat(self, mail: Mail, context: MailContext, account_id: str) -> bool:
        """Post the message's chat version to the team's chat, once per key; False when
        already posted or no chat is configured (CHAT_URLS)."""
        if not self.settings.chat_urls:
            return False
        key = f"{mail.key}:chat"
        rendered = render(
            self.templates,
            mail.template,
            context.model_dump() | {"links": self._links()},
            kind="chat",
        )
        claimed = self._claim(
            Notification(
                key=key,
                account_id=account_id,
                channel="chat",
                template=mail.template,
                recipient="chat",
                subject=rendered.subject,
                body_text=rendered.text,
            )
        )
        if not claimed:
            return False
        if not self.chat.notify(title=rendered.subject, body=rendered.text):
            # Retried by the activity's policy; apprise has logged which service failed.
            raise RuntimeError(f"chat delivery failed for {key}")
        self._mark_sent(key)
        return True
