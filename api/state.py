"""What the API's routes share for the process's life: the settings, one Temporal client
(connected at the first request that needs it, so the API starts, and says it is not ready,
while Temporal is down), the secrets, the rate buckets, and who each request is."""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING

from fastapi import Request

from api.guards import RateLimit, Tokens, Verifier, json_body, read_claim, refuse
from models.door import SLUG_PATTERN
from service.errors import Unavailable

if TYPE_CHECKING:
    from temporalio.client import Client

    from infra.settings import Settings

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
        self.tokens = Tokens(settings.api_tokens.get_secret_value())
        self.rate = RateLimit(settings.api_rate_limit)
        self._client: Client | None = None
        self._connecting = asyncio.Lock()

    async def client(self) -> Client:
        from infra.settings import TemporalUnreachable, connect_temporal

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


async def signed_body(request: Request, source: str) -> bytes:
    """The body of a system's write, once its signature with `source`'s secret holds and the
    source is within its rate; 401, 413, 415 or 429 otherwise."""
    api = state(request)
    now = time.time()
    claim = read_claim(request.headers.get("x-signature"), now)
    body = await json_body(request)
    api.verifier.check(source, claim, body)
    request.state.who = f"source:{source}"
    api.rate.take(f"source {source}", time.monotonic())
    return body


def person(request: Request) -> str:
    """The name of the API token the request carries (401 without a valid one), within its
    rate; it is the `by` of what the person does."""
    api = state(request)
    name = api.tokens.who(request.headers.get("authorization"))
    request.state.who = f"token:{name}"
    api.rate.take(f"token {name}", time.monotonic())
    return name


def source_of(request: Request) -> str:
    """The `X-Source` header (default `api`): a name, or 401 before anything is read."""
    source = request.headers.get(SOURCE, DEFAULT_SOURCE).strip()
    if not re.fullmatch(SLUG_PATTERN, source):
        raise refuse(401, f"{SOURCE} must be a source name (lowercase letters, digits, hyphens)")
    return source
