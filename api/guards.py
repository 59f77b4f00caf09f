"""What every request passes before its body is believed: JSON only, a bounded size, a
signature from the source (systems' writes) or a bearer token (people's tools), and a rate.

Signatures are Stripe's scheme: `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">` with the source's secret; several `v1=` may be given (a sender rotating its
secret signs with both). A signature more than five minutes from our clock is refused, so a
captured request cannot be replayed later. Every comparison of secrets is constant-time."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

MAX_BODY = 256 * 1024
TOLERANCE = 300  # seconds between the signature's time and ours
MAX_REPLAYS = 200_000  # signatures remembered: ten minutes at over 300 writes a second
MAX_BUCKETS = 10_000  # rate buckets kept (sources and tokens are names from configuration)
SIGNATURE = "X-Signature"
_SECONDS = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def refuse(status: int, detail: str, **headers: str) -> HTTPException:
    return HTTPException(status, detail, headers=headers or None)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, now: float | None = None) -> str:
    """The header a sender puts on `body` (the tests, the benchmark and the README use it)."""
    timestamp = int(time.time() if now is None else now)
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


@dataclass(frozen=True)
class Claim:
    """A signature header read, not yet checked against the body."""

    timestamp: int
    signatures: list[str]


def read_claim(header: str | None, now: float) -> Claim:
    """The header's time and signatures; 401 when missing, malformed or out of time (before
    anything of the body is read)."""
    if not header:
        raise refuse(401, f"missing {SIGNATURE} (t=<unix seconds>,v1=<hex HMAC-SHA256>)")
    parts = [part.strip().partition("=") for part in header[:1024].split(",")]
    stamps = [value for key, _, value in parts if key == "t"]
    signatures = [value for key, _, value in parts if key == "v1"]
    # Strict shapes before any arithmetic or comparison: a 5,000-digit time or a non-hex
    # signature is a malformed header, not a crash.
    if (
        len(stamps) != 1
        or not _SECONDS.fullmatch(stamps[0])
        or not signatures
        or not all(_HEX_SHA256.fullmatch(given) for given in signatures)
    ):
        raise refuse(401, f"malformed {SIGNATURE}: expected t=<unix seconds>,v1=<64 hex digits>")
    timestamp = int(stamps[0])
    if abs(now - timestamp) > TOLERANCE:
        raise refuse(
            401, f"{SIGNATURE} is {abs(now - timestamp):.0f} s from our clock (at most {TOLERANCE})"
        )
    return Claim(timestamp, signatures)


class Verifier:
    """The sources' secrets: one per source, else the shared one."""

    def __init__(self, shared: str | None, per_source: dict[str, str]) -> None:
        self._shared = shared
        self._per_source = per_source

    def check(self, source: str, claim: Claim, body: bytes) -> None:
        secret = self._per_source.get(source, self._shared)
        expected = sign(secret, claim.timestamp, body) if secret else ""
        # Every given signature is compared (no early exit), each in constant time.
        matches = [
            hmac.compare_digest(expected.encode(), given.encode()) for given in claim.signatures
        ]
        if not secret or not any(matches):
            raise refuse(401, f"the signature does not match the body with {source}'s secret")


class Replays:
    """Signatures seen in the last two windows, and for which request (method, path, source).
    The signature covers the time and the body, not where it is sent: a captured events body
    could otherwise be replayed to another account's URL within the five minutes. The same
    request again is a retry and passes (the endpoints answer retries as the first time);
    the same signature on another request is refused. In this process: N API processes
    each keep their own."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def check(self, claim: Claim, request: str, now: float) -> None:
        while self._seen and (
            len(self._seen) > MAX_REPLAYS
            or next(iter(self._seen.values()))[1] < now - 2 * TOLERANCE
        ):
            self._seen.popitem(last=False)
        for given in claim.signatures:
            first = self._seen.get(given)
            if first is not None and first[0] != request:
                raise refuse(401, "this signature was made for another request")
        for given in claim.signatures:
            self._seen.setdefault(given, (request, now))


class Tokens:
    """The API tokens by name; a request's bearer token is compared with each."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self._tokens = tokens

    def who(self, authorization: str | None) -> str:
        scheme, _, given = (authorization or "").partition(" ")
        found = None
        if scheme.lower() == "bearer" and given:
            for name, token in self._tokens.items():
                if hmac.compare_digest(token.encode(), given.strip().encode()):
                    found = name
        if found is None:
            raise refuse(
                401,
                "missing or unknown API token (Authorization: Bearer <token>)",
                **{"WWW-Authenticate": "Bearer"},
            )
        return found


@dataclass
class RateLimit:
    """A token bucket per source or token: `rate` a second, bursts of twice that. In this
    process: N API processes behind a balancer let N times as much through."""

    rate: float
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)

    def take(self, key: str, now: float) -> None:
        burst = max(1.0, 2 * self.rate)
        level, then = self._buckets.pop(key, (burst, now))
        if len(self._buckets) >= MAX_BUCKETS:  # the longest unused is full again by now
            self._buckets.popitem(last=False)
        level = min(burst, level + (now - then) * self.rate)
        if level < 1:
            self._buckets[key] = (level, now)
            wait = math.ceil((1 - level) / self.rate)
            raise refuse(
                429, f"{key}: over {self.rate:g} requests a second", **{"Retry-After": str(wait)}
            )
        self._buckets[key] = (level - 1, now)


async def json_body(request: Request, *, empty_ok: bool = False) -> bytes:
    """The raw body: JSON only (415), at most MAX_BODY bytes (413, read no further)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise refuse(413, f"the body is larger than {MAX_BODY // 1024} KiB")
    if empty_ok and length == "0":
        return b"{}"
    media = media_type(request)
    if media != "application/json":
        raise refuse(415, f"send JSON (Content-Type: application/json), not {media or 'nothing'}")
    body = await bounded(request, MAX_BODY, f"the body is larger than {MAX_BODY // 1024} KiB")
    return body if body or not empty_ok else b"{}"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def bounded(request: Request, limit: int, too_large: str) -> bytes:
    """The body, read no further than `limit` bytes (413 with `too_large` beyond)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise refuse(413, too_large)
        chunks.append(chunk)
    return b"".join(chunks)
