"""Links to an account's portal page: a token naming the account and the contact it was
made for, with its issue and expiry times, signed with PORTAL_SECRET (HMAC-SHA256).

    <account>.<contact>.<issued ms>.<expires s>.<signature>

The contact is named by a short hash of their address, not the address: a link is pasted,
forwarded and logged by proxies, and must carry no personal data. Nothing is stored per
link; `starter.py portal-link ACCOUNT --revoke` records a time before which the account's
links no longer open (the `portal_access` table), so a forwarded link can be cut off.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_TOKEN = re.compile(
    r"(?P<account>[a-z0-9][a-z0-9-]{0,62})\.(?P<contact>[0-9a-f]{16})\."
    r"(?P<issued>[0-9]{13})\.(?P<expires>[0-9]{10})\.(?P<signature>[0-9a-f]{64})"
)


class Refused(Exception):
    """Not a link to any page: forged, tampered, expired or of another shape. The page
    shows nothing of any account, and says only that the link does not open."""


@dataclass(frozen=True)
class Grant:
    account_id: str
    contact: str  # contact_key(email) of whom the link was made for
    issued_at: datetime
    expires_at: datetime


def contact_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), b"portal-link:" + payload.encode(), hashlib.sha256).hexdigest()


def issue(secret: str, account_id: str, email: str, now: datetime, valid_for: timedelta) -> str:
    issued = int(now.timestamp() * 1000)
    expires = int((now + valid_for).timestamp())
    payload = f"{account_id}.{contact_key(email)}.{issued:013d}.{expires:010d}"
    return f"{payload}.{_sign(secret, payload)}"


def read(secret: str, token: str, now: datetime) -> Grant:
    """The grant a token carries; Refused when it is not one this secret signed, or expired.
    (Revocation is the caller's: it needs the database.)"""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise Refused("not a portal link")
    payload = token.rsplit(".", 1)[0]
    if not hmac.compare_digest(_sign(secret, payload).encode(), match["signature"].encode()):
        raise Refused("not signed by us")
    expires_at = datetime.fromtimestamp(int(match["expires"]), UTC)
    if expires_at <= now:
        raise Refused("expired")
    return Grant(
        account_id=match["account"],
        contact=match["contact"],
        issued_at=datetime.fromtimestamp(int(match["issued"]) / 1000, UTC),
        expires_at=expires_at,
    )
