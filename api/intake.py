"""The intake: deals and facts from other systems, each write signed by its source.

- `POST /v1/deals`: a deal document, as `starter.py start --from-file` takes it;
- `POST /v1/webhooks/{source}`: a CRM's own payload, made a deal by `intake/{source}.toml`;
- `POST /v1/accounts/{account_id}/events`: facts (milestones, tasks, engagement, ...).

A deal delivered again answers as the first delivery did (200 instead of 202), and starts
nothing; see service/deals.py for why concurrent deliveries start one onboarding."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse

from api.state import signed_body, source_of, state
from models.door import SLUG_PATTERN, admit
from service.deals import Playbooks, Start, Started, start_deal

log = logging.getLogger("api")
router = APIRouter(prefix="/v1")
AccountId = Annotated[str, Path(pattern=SLUG_PATTERN, description="The account id (slug).")]
SourceName = Annotated[str, Path(pattern=SLUG_PATTERN, description="The CRM's mapping name.")]


class Unprocessable(Exception):
    """A body that cannot be used: `errors` are (field, message) pairs, each named."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in errors))
        self.errors = errors


def unprocessable(error: Any, origin: Any = None) -> Unprocessable:
    """A pydantic ValidationError as named fields, in the CLI's words; `origin` maps a deal
    field to the payload field it came from (a webhook)."""
    pairs = []
    for e in error.errors():
        field = ".".join(str(part) for part in e["loc"])
        source = origin(e["loc"]) if origin and e["loc"] else None
        pairs.append(
            (
                f"{field} (from {source})" if source else field,
                e["msg"].removeprefix("Value error, "),
            )
        )
    return Unprocessable(pairs)


async def _start(request: Request, document: Any, origin: Any = None) -> JSONResponse:
    from pydantic import ValidationError

    from models.journey import OnboardingRequest

    api = state(request)
    try:
        deal = admit(OnboardingRequest, document)
    except ValidationError as error:
        raise unprocessable(error, origin) from None
    started = await start_deal(await api.client(), deal, Playbooks(api.settings))
    log.info("deal for %s: %s", started.account_id, started.outcome)
    return _started(request, started)


def _started(request: Request, started: Start) -> JSONResponse:
    body = {
        "workflow_id": started.workflow_id,
        "status_url": str(request.url_for("account_status", account_id=started.account_id)),
    }
    return JSONResponse(body, status_code=202 if started.outcome is Started.NEW else 200)


@router.post(
    "/deals",
    status_code=202,
    summary="Start an account's onboarding from a deal document",
    responses={200: {"description": "This deal had already started it: nothing done"}},
)
async def deals(request: Request) -> JSONResponse:
    body = await signed_body(request, source_of(request))
    return await _start(request, body)


@router.post("/webhooks/{source}", summary="A CRM's own payload, mapped by intake/{source}.toml")
async def webhook(request: Request, source: SourceName) -> JSONResponse:
    from api.mapping import Ignored, MappingError, PayloadError, load_mapping
    from service.errors import NotFound

    body = await signed_body(request, source)
    mapping = load_mapping(state(request).settings.intake_dir, source)
    if mapping is None:
        raise NotFound(f"no mapping for source {source}: add intake/{source}.toml")
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise Unprocessable([("", f"Invalid JSON: {error}")]) from None
    try:
        mapped = mapping.apply(payload)
    except PayloadError as error:
        raise Unprocessable([(error.field, str(error))]) from None
    except MappingError:
        log.exception("intake/%s.toml is broken", source)
        raise
    if isinstance(mapped, Ignored):
        log.info("%s payload ignored: %s", source, mapped.reason)
        return JSONResponse({"ignored": mapped.reason})
    return await _start(request, mapped.document, mapping.origin)


@router.post(
    "/accounts/{account_id}/events",
    status_code=202,
    summary="Facts about an account: milestones, tasks, engagement, champion, users, tickets",
)
async def events(
    request: Request,
    account_id: AccountId,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    from pydantic import ValidationError

    from models.events import LIVES_ON, admit_events
    from service.onboardings import signal_all

    source = source_of(request)
    body = await signed_body(request, source)
    try:
        admitted = admit_events(body)
    except ValidationError as error:
        raise unprocessable(error) from None
    signals = [event.signal(source) for event in admitted]
    sent_to = await signal_all(
        await state(request).client(),
        account_id,
        signals,
        lives_on=LIVES_ON,
        request_ids=_request_ids(source, account_id, idempotency_key, len(signals)),
    )
    log.info("%d event(s) for %s from %s", len(signals), account_id, source)
    return JSONResponse(
        {"accepted": len(signals), "sent_to": sorted(set(sent_to))}, status_code=202
    )


def _request_ids(source: str, account: str, key: str | None, count: int) -> list[str] | None:
    """One id per event of the list, the same each time the list comes with this key: the
    server then takes each event once, however often the list is retried."""
    if key is None:
        return None
    check_key(key)
    digests = (
        hashlib.sha256(f"{source}\n{account}\n{key}\n{n}".encode()).digest() for n in range(count)
    )
    return [str(uuid.UUID(bytes=digest[:16])) for digest in digests]


def check_key(key: str) -> None:
    """An Idempotency-Key is printable text (it is hashed, never stored or logged)."""
    if not key.strip() or not key.isprintable():
        raise Unprocessable([("Idempotency-Key", "printable characters, not empty")])
