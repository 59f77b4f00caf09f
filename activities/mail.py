"""Mail in three steps: `render` a template (pure) → `build_message` → a transport `send`s it."""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
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

from infra import i18n
from infra.settings import Settings
from models.activities import CUSTOMER, Mail, MailContext, MailTemplate, Role
from models.journey import Contact, TouchModel

TEMPLATE_DIR = Path(__file__).parent / "templates"


def template_environment(locale: str = i18n.DEFAULT_LOCALE) -> Environment:
    """The templates in `locale`: its catalog for `{% trans %}` and `_()`, and the filters
    `date`, `datetime`, `time`, `money` in its conventions (infra/i18n.py), each in the
    context's `timezone`."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return i18n.install(env, locale)


# --- who a message is from, to whom, and how it greets -------------------------------------------

# Messages to the customer's people; everything else goes to the CS team, the AE or CS ops.
CUSTOMER_TEMPLATES = {
    MailTemplate.WHAT_TO_EXPECT: Role.CHAMPION,
    MailTemplate.WELCOME: Role.CHAMPION,
    MailTemplate.EXPAND: Role.CHAMPION,
    MailTemplate.FAREWELL: Role.CHAMPION,
    MailTemplate.KEEP_LEARNING: Role.CHAMPION,
    MailTemplate.DIGEST: Role.CHAMPION,
    MailTemplate.ACADEMY_INVITE: Role.USER,
}


def recipient_role(mail: Mail, context: MailContext, to: Contact) -> Role:
    """Who the addressee is: as the workflow said, else (everboarding's messages, and those
    decided before it said) what the template and the addresses tell."""
    if mail.role is not None:
        return mail.role
    if mail.to is None:
        return Role.QUEUE
    if mail.template in CUSTOMER_TEMPLATES:
        return CUSTOMER_TEMPLATES[mail.template]
    address = str(to.email).casefold()
    if address == str(context.account.champion.email).casefold():
        return Role.CHAMPION
    if address == str(context.account.account_executive.email).casefold():
        return Role.AE
    if context.csm is not None and address == context.csm.email.casefold():
        return Role.CSM
    if mail.template in (MailTemplate.ESCALATION, MailTemplate.CLOSED):
        return Role.LEAD
    return Role.CSM  # the CSM's own messages: brief, review, reassignment, check-in


@dataclass(frozen=True)
class Voice:
    """Who speaks in a message and how it addresses its reader, in the message's language."""

    role: Role
    salutation: str
    """The name after "Hi": a person's first name; a team or an inbox by its whole name
    (`ja`: a customer's family name with 様, `森 様`)."""
    signer: str | None
    """Who signs (customer mail only): the CSM, the team, the AE before there is a CSM."""
    signer_title: str | None
    reply_to: str | None
    """Where the customer's reply goes: the signer's address (a team's or the queue's inbox
    when that is who looks after the account)."""
    named: bool = False
    """The signer is someone by name (a CSM, a team, the AE), shown in `From` too."""
    greeting: tuple[str, ...] = ()
    """The message's opening lines: `Hi Kenji,`; in `ja` a customer's company above their
    name, as a Japanese letter is addressed."""
    opening: str | None = None
    """The set phrase a letter in the locale opens with after the greeting (`ja`), if any."""

    @property
    def customer(self) -> bool:
        return self.role in CUSTOMER


def personal_csm(context: MailContext) -> bool:
    """A CSM of the account's own: a named person (high-touch). Low-, tech- and community-touch
    accounts are looked after by a pooled CSM (the roster's team), and an account nobody had
    room for by the queue: neither is "your customer success manager"."""
    touch = context.touch_model or context.account.touch_model
    return context.csm is not None and not context.csm.pooled and touch is TouchModel.HIGH


def inbox_name(name: str) -> str:
    """A shared inbox as it is greeted: `Lena Park (CS lead, onboarding queue)` → `Lena Park`."""
    return name.split("(")[0].strip() or name


def locale_for(role: Role, context: MailContext, internal_locale: str) -> str:
    """Customer mail is in the deal's language; the CS team's, the AE's and CS ops' in the
    deployment's (INTERNAL_LOCALE). Every template, the team's too, is translated into every
    supported locale (tests/test_i18n.py fails on one that is not)."""
    if role in CUSTOMER:
        return i18n.supported(context.account.locale)
    return i18n.supported(internal_locale)


def timezone_for(role: Role, context: MailContext, default_timezone: str) -> str:
    """The zone a message's dates and times are shown in: the customer's (the deal's
    `timezone`) for customer mail, the deployment's (DEFAULT_TIMEZONE) for the team's."""
    if role in CUSTOMER and context.account.timezone:
        return context.account.timezone
    return default_timezone


# The set phrase a letter opens with, where the locale has one: to a customer, to a colleague.
OPENINGS = {"ja": ("いつもお世話になっております。", "お疲れさまです。")}


def voice(mail: Mail, context: MailContext, to: Contact, locale: str = "en") -> Voice:
    role = recipient_role(mail, context, to)
    _ = i18n.translations(locale).gettext
    first = to.name.split()[0] if to.name.split() else to.name
    person = role in (*CUSTOMER, Role.AE, Role.LEAD) or (role is Role.CSM and personal_csm(context))
    if locale == "ja":
        # Customers by family name with 様; colleagues by name with さん, a team as 各位.
        if role in CUSTOMER:
            salutation = i18n.honorific(to.name, locale)
        else:
            salutation = f"{to.name} さん" if person else f"{inbox_name(to.name)} 各位"
    else:
        salutation = first if person else inbox_name(to.name)
    greeting: tuple[str, ...] = (_("Hi %(name)s,") % {"name": salutation},)
    if locale == "ja" and role in CUSTOMER:
        greeting = (context.account.account_name, *greeting)
    to_customer, to_colleague = OPENINGS.get(locale, (None, None))
    if role not in CUSTOMER:
        return Voice(role, salutation, None, None, None, greeting=greeting, opening=to_colleague)
    csm, ae = context.csm, context.account.account_executive
    if csm is None:  # Depart (or a cancel in it): the AE's stage
        title = _("Your account executive")
        return Voice(role, salutation, ae.name, title, str(ae.email), True, greeting, to_customer)
    if csm.pooled:
        team = _("Your customer success team")
        return Voice(role, salutation, team, None, csm.email, False, greeting, to_customer)
    named = personal_csm(context)
    title = _("Your customer success manager") if named else _("Customer success")
    return Voice(role, salutation, csm.name, title, csm.email, True, greeting, to_customer)


def facts(context: MailContext, default_currency: str) -> dict[str, Any]:
    """The facts a message's wording turns on, besides its context."""
    account = context.account
    return {
        "currency": account.currency or default_currency,
        "signed": (context.contract_signed_at or account.contract_signed_at) is not None,
        "touch": context.touch_model or account.touch_model,
        "personal_csm": personal_csm(context),
    }


def variables(
    mail: Mail,
    context: MailContext,
    to: Contact,
    *,
    links: dict[str, str],
    default_currency: str,
    locale: str = i18n.DEFAULT_LOCALE,
    timezone: str = "UTC",
    portal_url: str | None = None,
) -> dict[str, Any]:
    """Everything a mail template reads: the context, its reader and who speaks to them (in
    `locale`), the facts, the links, and the zone its dates are shown in. `portal_url`, the
    reader's own link to their onboarding's page, is signed for them when the mail is
    rendered (never part of the context that travels through Temporal)."""
    return (
        context.model_dump()
        | facts(context, default_currency)
        | {
            "recipient": to.model_dump(),
            "voice": voice(mail, context, to, locale),
            "links": links,
            "timezone": timezone,
            "portal_url": portal_url,
        }
    )


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
    rendered: Rendered,
    *,
    key: str,
    sender: str,
    to: Contact,
    cc: list[Contact],
    voice: Voice | None = None,
    reply_to: Contact | None = None,
) -> EmailMessage:
    """With a `voice` that signs (customer mail), the message still comes from `sender`'s
    address, so the domain's mail authentication holds, shown with the signer's name, and
    replies go to the signer (`Reply-To`)."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    if voice is not None and voice.reply_to is not None:
        if voice.named:
            organisation, address = parseaddr(sender)
            shown = f"{voice.signer} via {organisation}" if organisation else str(voice.signer)
            message.replace_header("From", formataddr((shown, address)))
        message["Reply-To"] = _address(voice.signer or "", voice.reply_to)
    elif reply_to is not None:  # the team's mail about a customer's question: answer them
        message["Reply-To"] = _address(reply_to.name, str(reply_to.email))
    message["To"] = _address(to.name, str(to.email))
    if cc:
        message["Cc"] = ", ".join(_address(c.name, str(c.email)) for c in cc)
    # A Message-ID derived from the business key lets a receiving system drop the rare
    # duplicate left by a crash between delivery and bookkeeping.
    message["Message-ID"] = f"<{key.replace(':', '.')}@onboarding>"
    message["X-Onboarding-Key"] = key
    message.set_content(rendered.text)
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html")
    return message


def _address(name: str, email: str) -> str:
    """`Name <local@domain>` with the domain in its ASCII (IDNA) form: email-validator keeps
    `müller.example` as typed, which no header can carry."""
    local, _, domain = email.rpartition("@")
    return formataddr((name, f"{local}@{domain.encode('idna').decode('ascii')}"))


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
