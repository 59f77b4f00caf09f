"""The customer's page, served by the HTTP API: `GET /portal/{token}`, and the forms on it
(a customer task done, people added). A link that does not open (forged, tampered, expired,
revoked, or for no onboarding) is a 403 that shows nothing of any account.

Every form carries a CSRF token made from the link, and every action is a signal with a
request id of its own making, which Temporal takes once: a double click does one thing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from temporalio.service import RPCError

from api.guards import bounded, media_type, refuse
from api.state import ApiState, state
from infra import i18n
from models.door import admit
from models.enums import Stage
from models.journey import UsersAdded
from models.onboarding import OnboardingStatus
from models.playbook import format_validation_error
from portal import access, links, view
from service.errors import NotFound, Unavailable
from service.onboardings import everboarding, request_id, signal_all, status
from workflows.contract import Signals

router = APIRouter(prefix="/portal", include_in_schema=False)
STATIC = Path(__file__).parent / "static"
STATIC_URL = "/portal-static"
NOTICES = {"task", "users", "help"}  # what a form's redirect may ask the page to say
MAX_FORM = 16 * 1024

# The page is a customer's private view: kept out of search engines, frames, caches and
# other sites' Referer headers; it runs no script and loads only its own stylesheet.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}


def _environment(locale: str) -> Environment:
    """The page's templates in `locale`: its catalog (infra/i18n.py, shared with the mails)
    and its dates in the customer's zone (the template's `timezone`)."""
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",)),
    )
    return i18n.install(env, locale)


TEMPLATES = {locale: _environment(locale) for locale in i18n.SUPPORTED_LOCALES}


@dataclass(frozen=True)
class Opened:
    token: str
    grant: links.Grant
    status: OnboardingStatus
    by: str  # who acts, for the record: the champion by name, else the customer


async def _open(request: Request, token: str) -> Opened:
    """The link's onboarding, or a 403 page (raised as Refused)."""
    api = state(request)
    secret = api.settings.portal_key()
    now = datetime.now(UTC)
    if secret is None:
        raise Refused()
    try:
        grant = links.read(secret, token, now)
    except links.Refused:
        raise Refused() from None
    if await asyncio.to_thread(access.revoked, api.engine(), grant.account_id, grant.issued_at):
        raise Refused()
    try:
        found = await status(await api.client(), grant.account_id)
    except NotFound:
        raise Refused() from None
    except (Unavailable, RPCError):
        raise Unreachable() from None
    champion = found.champion
    is_champion = champion is not None and links.contact_key(champion.email) == grant.contact
    by = champion.name if is_champion and champion else "customer (portal)"
    return Opened(token, grant, found, by)


class Refused(Exception):
    """A link that does not open."""


class Unreachable(Exception):
    """Temporal, or a worker to answer the status query, is not there just now."""


def _browser_locale(request: Request) -> str:
    wanted = request.headers.get("accept-language", "").lower()
    return "ja" if wanted.startswith("ja") else i18n.DEFAULT_LOCALE


def refused_page(request: Request, exc: Exception) -> HTMLResponse:
    """In the browser's language (no account to take one from)."""
    locale = _browser_locale(request)
    html = TEMPLATES[locale].get_template("refused.html.j2").render(lang=locale, static=STATIC_URL)
    return HTMLResponse(html, status_code=403)


def unreachable_page(request: Request, exc: Exception) -> HTMLResponse:
    """A page, not the API's JSON: the customer is told to come back, and nothing is lost."""
    locale = _browser_locale(request)
    template = TEMPLATES[locale].get_template("unavailable.html.j2")
    html = template.render(lang=locale, static=STATIC_URL)
    return HTMLResponse(html, status_code=503, headers={"Retry-After": "60"})


def _csrf(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), b"portal-form:" + token.encode(), hashlib.sha256).hexdigest()


@router.get("/{token}")
async def show(request: Request, token: str) -> HTMLResponse:
    opened = await _open(request, token)
    said = request.query_params.get("said")
    notice = (said, request.query_params.get("what", "")[:200]) if said in NOTICES else None
    return await _render(request, opened, notice=notice)


async def _render(
    request: Request, opened: Opened, *, status_code: int = 200, **more: Any
) -> HTMLResponse:
    api = state(request)
    found = opened.status
    team = _team(api)
    helper = await asyncio.to_thread(access.helper, api.engine(), found.csm_id, team)
    deadlines: Mapping[str, timedelta] = found.stage_deadlines or {
        # A worker from before 0.4 does not say: the file as it is now.
        name: plan.deadline
        for name, plan in api.playbooks()
        .playbook(found.playbook)
        .resolve(found.playbook, found.touch_model)
        .stages.items()
    }
    lives_on = None
    if found.stage is Stage.COMPLETED:
        lives_on = await everboarding(await api.client(), found.account_id)
    page = view.page(found, deadlines, datetime.now(UTC), lives_on)
    template = "closed.html.j2" if page.closed else "page.html.j2"
    locale = i18n.supported(found.locale)
    html = (
        TEMPLATES[locale]
        .get_template(template)
        .render(
            lang=locale,
            timezone=found.timezone or api.settings.default_timezone,
            static=STATIC_URL,
            base=f"/portal/{opened.token}",
            csrf=_csrf(api.settings.portal_key() or "", opened.token),
            page=page,
            helper=helper,
            notice=more.pop("notice", None),
            users_error=more.pop("users_error", None),
            users_given=more.pop("users_given", ""),
            help_error=more.pop("help_error", None),
            help_given=more.pop("help_given", ""),
        )
    )
    return HTMLResponse(html, status_code=status_code)


def _team(api: ApiState) -> access.Helper:
    name, email = parseaddr(api.settings.mail_from)
    return access.Helper(name or "Customer success", email, team=True)


async def _form(request: Request, opened: Opened) -> dict[str, str]:
    """The form's fields, once its CSRF token matches the link's (403 otherwise)."""
    if media_type(request) != "application/x-www-form-urlencoded":
        raise refuse(415, "send the page's form")
    body = await bounded(request, MAX_FORM, "the form is too large")
    fields = {key: values[0] for key, values in parse_qs(body.decode(errors="replace")).items()}
    expected = _csrf(state(request).settings.portal_key() or "", opened.token)
    if not hmac.compare_digest(expected.encode(), fields.get("csrf", "").encode()):
        raise Refused()
    return fields


def _back(opened: Opened, said: str, what: str) -> Response:
    return RedirectResponse(
        f"/portal/{opened.token}?said={said}&what={quote(what)}", status_code=303
    )


@router.post("/{token}/tasks/{task_id}")
async def task_done(request: Request, token: str, task_id: str) -> Response:
    from models.journey import TaskSignal

    opened = await _open(request, token)
    await _form(request, opened)
    task = next((t for t in opened.status.tasks if t.id == task_id), None)
    if task is None or task.owner != view.CUSTOMER:
        raise refuse(403, "this step is not yours to tick off")
    if task.done_at is None:
        signal = TaskSignal(task_id=task.id, by=opened.by)
        account = opened.grant.account_id
        await signal_all(
            await state(request).client(),
            account,
            [(Signals.TASK_DONE, signal)],
            lives_on=set(),
            request_ids=[request_id("portal", account, "task", task.id)],
        )
        await _settled(request, account, lambda s: _done(s, task.id))
    return _back(opened, "task", task.title)


def _done(found: OnboardingStatus, task_id: str) -> bool:
    return any(t.id == task_id and t.done_at for t in found.tasks)


@router.post("/{token}/users")
async def users(request: Request, token: str) -> Response:
    opened = await _open(request, token)
    given = (await _form(request, opened)).get("users", "")
    people = []
    for line in [line.strip() for line in given.splitlines() if line.strip()][:50]:
        name, email = parseaddr(line)
        people.append({"name": name or email.split("@")[0] or line, "email": email or line})
    try:
        added = admit(UsersAdded, {"users": people, "by": opened.by})
    except ValidationError as error:
        return await _render(
            request,
            opened,
            status_code=422,
            users_error=format_validation_error(error),
            users_given=given,
        )
    account = opened.grant.account_id
    emails = sorted(user.email.lower() for user in added.users)
    await signal_all(
        await state(request).client(),
        account,
        [(Signals.USERS_ADDED, added)],
        lives_on=set(),
        request_ids=[request_id("portal", account, "users", *emails)],
    )
    return _back(opened, "users", str(len(emails)))


@router.post("/{token}/help")
async def ask_for_help(request: Request, token: str) -> Response:
    """The customer's question, as a mail to their CSM that replies to them (recorded in the
    outbox with the others). One mail per question, however often the form is sent."""
    from models.journey import HelpRequest

    opened = await _open(request, token)
    message = (await _form(request, opened)).get("message", "").strip()
    champion = opened.status.champion
    asker = champion if champion and opened.by == champion.name else None
    account = opened.grant.account_id
    asked_id = request_id("portal", account, "help", opened.grant.contact, message)
    try:
        asked = admit(
            HelpRequest,
            {
                "id": asked_id,
                "message": message,
                "by": opened.by,
                "reply_to": asker,
            },
        )
    except ValidationError as error:
        return await _render(
            request,
            opened,
            status_code=422,
            help_error=format_validation_error(error),
            help_given=message,
        )
    await signal_all(
        await state(request).client(),
        account,
        [(Signals.HELP_REQUESTED, asked)],
        lives_on=set(),
        request_ids=[asked_id],
    )
    return _back(opened, "help", "")


async def _settled(request: Request, account: str, check: Any, within: float = 3.0) -> None:
    """Wait (briefly) until the onboarding shows what was just sent, so the page the
    customer comes back to shows it too; a slow worker only delays that, not the action."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check(await status(await state(request).client(), account)):
            return
        await asyncio.sleep(0.1)
