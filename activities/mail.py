"""Mail in three steps: `render` a template (pure) → `build_message` → a transport `send`s it."""

from __future__ import annotations

import os
import smtplib
import tempfile
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from infra.settings import Settings
from models.journey import Contact

TEMPLATE_DIR = Path(__file__).parent / "templates"


def _format_date(value: datetime) -> str:
    return f"{value:%A} {value.day} {value:%B %Y}"


def template_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["date"] = _format_date
    return env


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


def render(env: Environment, template: str, context: dict[str, Any], kind: str = "txt") -> Rendered:
    """`{template}.txt.j2` sets `subject` and is the text body; `{template}.html.j2`, where it
    exists (customer-facing mail), is the HTML alternative. `kind="chat"` renders the chat
    version (`{template}.chat.j2`) instead of the text."""
    module = env.get_template(f"{template}.{kind}.j2").make_module(context)
    subject = " ".join(str(module.subject).split())  # type: ignore[attr-defined]
    html_name = f"{template}.html.j2"
    html = None
    if html_name in env.list_templates(extensions=["j2"]):
        html = env.get_template(html_name).render(context)
    return Rendered(subject=subject, text=str(module).strip() + "\n", html=html)


def build_message(
    rendered: Rendered, *, key: str, sender: str, to: Contact, cc: list[Contact]
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = formataddr((to.name, str(to.email)))
    if cc:
        message["Cc"] = ", ".join(formataddr((c.name, str(c.email))) for c in cc)
    # A Message-ID derived from the business key lets a receiving system drop the rare
    # duplicate left by a crash between delivery and bookkeeping.
    message["Message-ID"] = f"<{key.replace(':', '.')}@onboarding>"
    message["X-Onboarding-Key"] = key
    message.set_content(rendered.text)
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html")
    return message


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class FileOutbox:
    """Writes each message as an .eml file, named by its key: a newcomer can read what was sent."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = str(message["X-Onboarding-Key"]).replace(":", "_") + ".eml"
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(message.as_bytes())
        os.replace(tmp, self.directory / name)


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        assert s.smtp_host is not None
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
            smtp.send_message(message)


def transport_from_settings(settings: Settings) -> Transport:
    if settings.smtp_host:
        return SmtpTransport(settings)
    return FileOutbox(settings.outbox_dir)
