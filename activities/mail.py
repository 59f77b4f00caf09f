"""Mail in three steps: `render` a template (pure) → `build_message` → a transport `send`s it."""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path
from typing import Any, Protocol

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)

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
    message["To"] = _address(to)
    if cc:
        message["Cc"] = ", ".join(_address(c) for c in cc)
    # A Message-ID derived from the business key lets a receiving system drop the rare
    # duplicate left by a crash between delivery and bookkeeping.
    message["Message-ID"] = f"<{key.replace(':', '.')}@onboarding>"
    message["X-Onboarding-Key"] = key
    message.set_content(rendered.text)
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html")
    return message


def _address(contact: Contact) -> str:
    """`Name <local@domain>` with the domain in its ASCII (IDNA) form: email-validator keeps
    `müller.example` as typed, which no header can carry."""
    local, _, domain = str(contact.email).rpartition("@")
    return formataddr((contact.name, f"{local}@{domain.encode('idna').decode('ascii')}"))


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class MailDeferred(Exception):
    """Certainly not delivered, for now: the server could not be reached or said not now
    (4xx). Retried, and the message's claim is released at once. Carries the SMTP code only,
    since smtplib's own errors quote the addresses (and would reach the logs). Anything else
    that breaks a session (a timeout or disconnect while the message is transmitted) leaves
    it unknown whether the server took it: the claim then holds until its lease runs out."""


class MailRefused(Exception):
    """The server refused this message for good (5xx): retrying it as it is cannot help."""

    def __init__(self, error_type: str, reason: str) -> None:
        super().__init__(reason)
        self.error_type = error_type
        self.reason = reason


def permanent_failure(error: Exception) -> tuple[str, str] | None:
    """(type, reason) when a message can never be built as it is; None for anything else
    (retried). Reasons carry no personal data."""
    if isinstance(error, TemplateNotFound):
        return None  # a worker of an older release, mid-deploy: a newer one will have it
    if isinstance(error, TemplateError):
        return "TemplateError", f"{type(error).__name__}: {error.message}"
    if isinstance(error, ValueError) and "linefeed" in str(error):
        return "InvalidHeader", "a header value (a name or subject) contains a line break"
    if isinstance(error, (ValueError, TypeError, UnicodeError)):
        return "InvalidMessage", f"the message cannot be built: {type(error).__name__}"
    return None


# A message's file is named by its key, with anything unsafe in a file name replaced.
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")


class FileOutbox:
    """Writes each message as an .eml file, named by its key: a newcomer can read what was sent."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = UNSAFE_IN_NAME.sub("_", str(message["X-Onboarding-Key"])) + ".eml"
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(message.as_bytes())
                os.replace(tmp, self.directory / name)  # atomic: the file is all there, or not
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        except OSError as error:  # a full disk, say
            raise MailDeferred(f"the outbox cannot be written ({error.strerror})") from None


class SmtpTransport:
    """SMTP with TLS that verifies the server (STARTTLS or implicit), per SMTP_TLS."""

    TIMEOUT = 30  # seconds per operation (notify.LEASE is sized from it)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = ssl.create_default_context(
            cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
        )

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        assert s.smtp_host is not None
        if s.smtp_tls == "implicit":
            return smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=self.TIMEOUT, context=self.context
            )
        smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self.TIMEOUT)
        if s.smtp_tls == "starttls":
            try:
                smtp.starttls(context=self.context)
            except BaseException:
                smtp.close()
                raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            smtp = self._connect()
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
        except (OSError, smtplib.SMTPException) as error:  # nothing was sent yet
            raise MailDeferred(f"cannot get through to the mail server: {error}") from None
        with smtp:
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as error:
                codes = sorted({code for code, _ in error.recipients.values()})
                shown = ", ".join(map(str, codes))
                if all(code >= 500 for code in codes):
                    raise MailRefused(
                        "RecipientRefused", f"the mail server refused the recipient ({shown})"
                    ) from None
                raise MailDeferred(f"the mail server deferred the recipient ({shown})") from None
            except smtplib.SMTPDataError as error:
                if error.smtp_code >= 500:
                    raise MailRefused(
                        "MessageRefused", f"the mail server refused the message ({error.smtp_code})"
                    ) from None
                raise MailDeferred(
                    f"the mail server deferred the message ({error.smtp_code})"
                ) from None
            except smtplib.SMTPResponseException as error:  # sender refused, and the like
                raise MailDeferred(
                    f"the mail server answered {error.smtp_code} ({type(error).__name__})"
                ) from None


def transport_from_settings(settings: Settings) -> Transport:
    if settings.smtp_host:
        return SmtpTransport(settings)
    return FileOutbox(settings.outbox_dir)
