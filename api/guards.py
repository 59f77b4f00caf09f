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
import time
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

MAX_BODY = 256 * 1024
TOLERANCE = 300  # seconds between the signature's time and ours
SIGNATURE = "X-Signature"


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
    parts = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key == "t"]
    signatures = [value for key, _, value in parts if key == "v1" and value]
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        raise refuse(401, f"malformed {SIGNATURE}: expected t=<unix seconds>,v1=<hex>")
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
        matches = [hmac.compare_digest(expected, given) for given in claim.signatures]
        if not secret or not any(matches):
            raise refuse(401, f"the signature does not match the body with {source}'s secret")


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
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str, now: float) -> None:
        burst = max(1.0, 2 * self.rate)
        level, then = self._buckets.get(key, (burst, now))
        level = min(burst, level + (now - then) * self.rate)
        if level < 1:
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
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise refuse(415, f"send JSON (Content-Type: application/json), not {media or 'nothing'}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise refuse(413, f"the body is larger than {MAX_BODY // 1024} KiB")
        chunks.append(chunk)
    body = b"".join(chunks)
    return body if body or not empty_ok else b"{}"
