"""What the API's routes share for the process's life, and who each request is.

The state: the settings, one Temporal client (connected at the first request that needs it,
so the API starts, and says it is not ready, while Temporal is down), the secrets, the
signatures seen, the rate buckets. Who: the dependencies a route declares, `SourceWrite` or
`WebhookWrite` (a system's signed write) and `Person` (a bearer token's name)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request

from api.guards import (
    RateLimit,
    Replays,
    Tokens,
    Verifier,
    json_body,
    read_claim,
    refuse,
)
from infra.settings import Settings, TemporalUnreachable, connect_temporal
from models.door import SLUG_PATTERN
from service.deals import Playbooks
from service.errors import Unavailable

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from temporalio.client import Client

SOURCE = "X-Source"  # which system signs a deal or an event (its secret, its rate)
DEFAULT_SOURCE = "api"


class ApiState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        secret = settings.webhook_secret
        self.verifier = Verifier(
            secret.get_secret_value() if secret else None,
            settings.webhook_secrets.get_secret_value(),
        )
        self.replays = Replays()
        self.tokens = Tokens(settings.api_tokens.get_secret_value())
        self.rate = RateLimit(settings.api_rate_limit)
        self._client: Client | None = None
        self._connecting = asyncio.Lock()
        self._playbooks: tuple[tuple[float, ...], Playbooks] | None = None
        self._engine: Engine | None = None

    def engine(self) -> Engine:
        """The app database (the portal's revocations and the roster), opened at first use."""
        if self._engine is None:
            from infra.db import make_engine

            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def playbooks(self) -> Playbooks:
        """The playbooks and academy, read again only when a file in the folder changed: the
        next deal after a CS team's edit gets the edit, and the others pay no reading (2.3 ms
        a deal on the event loop, measured by benchmarks/intake.py)."""
        folder = self.settings.playbook_dir
        stamp = tuple(sorted(path.stat().st_mtime for path in folder.glob("*.toml")))
        if self._playbooks is None or self._playbooks[0] != stamp:
            self._playbooks = (stamp, Playbooks(self.settings))
        return self._playbooks[1]

    async def client(self) -> Client:
        async with self._connecting:
            if self._client is None:
                try:
                    self._client = await connect_temporal(settings=self.settings)
                except TemporalUnreachable as error:
                    raise Unavailable(str(error)) from None
            return self._client


def state(request: Request) -> ApiState:
    found: ApiState = request.app.state.api
    return found


@dataclass(frozen=True)
class Signed:
    """A system's write whose signature held: who sent it, and the bytes they signed."""

    source: str
    body: bytes


async def _signed(request: Request, source: str) -> Signed:
    """401 (no, malformed, stale or wrong signature; one made for another request), 413,
    415 or 429; the time is checked before the body is read."""
    api = state(request)
    now = time.time()
    claim = read_claim(request.headers.get("x-signature"), now)
    body = await json_body(request)
    api.verifier.check(source, claim, body)
    api.replays.check(claim, f"{request.method} {request.url.path} {source}", now)
    request.state.who = f"source:{source}"
    api.rate.take(f"source {source}", time.monotonic())
    return Signed(source, body)


async def _source_write(request: Request) -> Signed:
    """Deals and events: the source is the `X-Source` header (default `api`)."""
    source = request.headers.get(SOURCE, DEFAULT_SOURCE).strip()
    if not re.fullmatch(SLUG_PATTERN, source):
        raise refuse(401, f"{SOURCE} must be a source name (lowercase letters, digits, hyphens)")
    return await _signed(request, source)


SourceName = Annotated[str, Path(pattern=SLUG_PATTERN, description="The CRM's mapping name.")]


async def _webhook_write(request: Request, source: SourceName) -> Signed:
    """A CRM's webhook: the source is the URL's."""
    return await _signed(request, source)


def _person(request: Request) -> str:
    """The name of the API token the request carries (401 without a valid one), within its
    rate; it is the `by` of what the person does."""
    api = state(request)
    name = api.tokens.who(request.headers.get("authorization"))
    request.state.who = f"token:{name}"
    api.rate.take(f"token {name}", time.monotonic())
    return name


SourceWrite = Annotated[Signed, Depends(_source_write)]
WebhookWrite = Annotated[Signed, Depends(_webhook_write)]
Person = Annotated[str, Depends(_person)]
