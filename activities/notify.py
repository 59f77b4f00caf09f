"""The mail activity: render, record in the outbox, deliver once per business key."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from activities.mail import Transport, build_message, render, template_environment
from config import Settings
from db import SessionFactory
from models.activities import EmailReceipt, EmailRequest
from models.tables import Notification, utcnow


class NotifyActivities:
    def __init__(self, sessions: SessionFactory, transport: Transport, settings: Settings) -> None:
        self.sessions = sessions
        self.transport = transport
        self.settings = settings
        self.templates = template_environment()

    def _links(self) -> dict[str, str]:
        s = self.settings
        return {
            "app": s.app_url,
            "academy": s.academy_url,
            "help": s.help_url,
            "exit_survey": s.exit_survey_url,
        }

    @activity.defn
    def send_email(self, request: EmailRequest) -> EmailReceipt:
        context = request.context.model_dump() | {
            "recipient": request.to.model_dump(),
            "links": self._links(),
        }
        rendered = render(self.templates, request.template, context)
        with self.sessions() as session:
            row = session.exec(select(Notification).where(Notification.key == request.key)).first()
            if row is not None and row.status == "sent":
                return EmailReceipt(key=request.key, delivered=False)
            if row is None:
                row = Notification(
                    key=request.key,
                    account_id=request.account_id,
                    template=request.template,
                    recipient=str(request.to.email),
                    subject=rendered.subject,
                    body_text=rendered.text,
                )
                session.add(row)
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    return EmailReceipt(key=request.key, delivered=False)
        message = build_message(
            rendered,
            key=request.key,
            sender=self.settings.mail_from,
            to=request.to,
            cc=request.cc,
        )
        self.transport.send(message)
        with self.sessions() as session:
            row = session.exec(select(Notification).where(Notification.key == request.key)).one()
            row.status = "sent"
            row.sent_at = utcnow()
            session.add(row)
            session.commit()
        return EmailReceipt(key=request.key, delivered=True)
