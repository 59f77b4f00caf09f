"""The mail activity: render, record in the outbox, deliver once per business key."""

from __future__ import annotations

import apprise
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from activities.mail import Transport, build_message, render, template_environment
from infra.db import SessionFactory
from infra.settings import Settings
from models.activities import ChatReceipt, ChatRequest, EmailReceipt, EmailRequest
from models.tables import Notification, utcnow


class NotifyActivities:
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
        """Write the outbox row `pending`; False when this key was already sent (or is being
        sent by a concurrent attempt)."""
        with self.sessions() as session:
            found = session.exec(select(Notification).where(Notification.key == row.key)).first()
            if found is not None:
                return found.status != "sent"
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return False
            return True

    def _mark_sent(self, key: str) -> None:
        with self.sessions() as session:
            row = session.exec(select(Notification).where(Notification.key == key)).one()
            row.status = "sent"
            row.sent_at = utcnow()
            session.add(row)
            session.commit()

    @activity.defn
    def send_email(self, request: EmailRequest) -> EmailReceipt:
        context = request.context.model_dump() | {
            "recipient": request.to.model_dump(),
            "links": self._links(),
        }
        rendered = render(self.templates, request.template, context)
        claimed = self._claim(
            Notification(
                key=request.key,
                account_id=request.account_id,
                template=request.template,
                recipient=str(request.to.email),
                subject=rendered.subject,
                body_text=rendered.text,
            )
        )
        if not claimed:
            return EmailReceipt(key=request.key, delivered=False)
        message = build_message(
            rendered,
            key=request.key,
            sender=self.settings.mail_from,
            to=request.to,
            cc=request.cc,
        )
        self.transport.send(message)
        self._mark_sent(request.key)
        activity.logger.info("mail %s sent", request.key)
        return EmailReceipt(key=request.key, delivered=True)

    @activity.defn
    def send_chat(self, request: ChatRequest) -> ChatReceipt:
        if not self.settings.chat_urls:
            return ChatReceipt(key=request.key, delivered=False)
        context = request.context.model_dump() | {"links": self._links()}
        rendered = render(self.templates, request.template, context, kind="chat")
        claimed = self._claim(
            Notification(
                key=request.key,
                account_id=request.account_id,
                channel="chat",
                template=request.template,
                recipient="chat",
                subject=rendered.subject,
                body_text=rendered.text,
            )
        )
        if not claimed:
            return ChatReceipt(key=request.key, delivered=False)
        if not self.chat.notify(title=rendered.subject, body=rendered.text):
            # Retried by the activity's policy; apprise has logged which service failed.
            raise RuntimeError(f"chat delivery failed for {request.key}")
        self._mark_sent(request.key)
        return ChatReceipt(key=request.key, delivered=True)
