"""The intake: deals and facts from other systems, each write signed by its source.

- `POST /v1/deals`: a deal document, as `starter.py start --from-file` takes it;
- `POST /v1/webhooks/{source}`: a CRM's own payload, made a deal by `intake/{source}.toml`;
- `POST /v1/accounts/{account_id}/events`: facts (milestones, tasks, engagement, ...).

A deal delivered again answers as the first delivery did (200 instead of 202), and starts
nothing; see service/deals.py for why concurrent deliveries start one onboarding."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.errors import Origin, Unprocessable, check_key, parse_json, unprocessable
from api.mapping import Ignored, PayloadError, load_mapping
from api.state import SourceName, SourceWrite, WebhookWrite, state
from models.door import SLUG_PATTERN, admit
from models.events import LIVES_ON, Event, admit_events
from models.journey import OnboardingRequest
from service.deals import Start, Started, start_deal
from service.errors import NotFound
from service.onboardings import request_id, signal_all

log = logging.getLogger("api")
router = APIRouter(prefix="/v1")
AccountId = Annotated[str, Path(pattern=SLUG_PATTERN, description="The account id (slug).")]
IdempotencyKey = Annotated[str | None, Header(max_length=255)]


@router.post(
    "/deals",
    status_code=202,
    summary="Start an account's onboarding from a deal document",
    responses={200: {"description": "This deal had already started it: nothing done"}},
)
async def deals(request: Request, write: SourceWrite) -> JSONResponse:
    return await _start(request, write.body)


@router.post("/webhooks/{source}", summary="A CRM's own payload, mapped by intake/{source}.toml")
async def webhook(request: Request, source: SourceName, write: WebhookWrite) -> JSONResponse:
    # Read at each call: a new or corrected mapping file applies without a restart (every
    # file was checked when the API started, so a broken one is an edit since).
    mapping = load_mapping(state(request).settings.intake_dir, source)
    if mapping is None:
        raise NotFound(f"no mapping for source {source}: add intake/{source}.toml")
    try:
        mapped = mapping.apply(parse_json(write.body))
    except PayloadError as error:
        raise Unprocessable([(error.field, str(error))]) from None
    if isinstance(mapped, Ignored):
        log.info("%s payload ignored: %s", source, mapped.reason)
        return JSONResponse({"ignored": mapped.reason})
    return await _start(request, mapped.document, mapping.origin)


async def _start(request: Request, document: Any, origin: Origin | None = None) -> JSONResponse:
    api = state(request)
    try:
        deal = admit(OnboardingRequest, document)
    except ValidationError as error:
        raise unprocessable(error, origin) from None
    started = await start_deal(await api.client(), deal, api.playbooks())
    log.info("deal for %s: %s", started.account_id, started.outcome)
    return _started(request, started)


def _started(request: Request, started: Start) -> JSONResponse:
    body = {
        "workflow_id": started.workflow_id,
        "status_url": str(request.url_for("account_status", account_id=started.account_id)),
    }
    return JSONResponse(body, status_code=202 if started.outcome is Started.NEW else 200)


@router.post(
    "/accounts/{account_id}/events",
    status_code=202,
    summary="Facts about an account: milestones, tasks, engagement, champion, users, tickets",
)
async def events(
    request: Request,
    account_id: AccountId,
    write: SourceWrite,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    try:
        admitted = admit_events(write.body)
    except ValidationError as error:
        raise unprocessable(error) from None
    signals = [event.signal(write.source) for event in admitted]
    ids = None
    if idempotency_key is not None:
        ids = _request_ids(write.source, account_id, idempotency_key, admitted)
    sent_to = await signal_all(
        await state(request).client(), account_id, signals, lives_on=LIVES_ON, request_ids=ids
    )
    log.info("%d event(s) for %s from %s", len(signals), account_id, write.source)
    return JSONResponse(
        {"accepted": len(signals), "sent_to": sorted(set(sent_to))}, status_code=202
    )


def _request_ids(source: str, account: str, key: str, events: list[Event]) -> list[str]:
    """One id per event, the same each time the same list comes with this key: the server
    then takes each event once. Made of the event itself and its place, so a list edited
    under the same key sends its changed events instead of dropping them."""
    check_key(key)
    return [
        request_id(source, account, key, str(n), event.model_dump_json())
        for n, event in enumerate(events)
    ]
