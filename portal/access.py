"""The portal's reads and writes in the database: whether a link was revoked, who helps the
account (its CSM from the roster, or the pooled team), and revoking an account's links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from models.tables import Csm, PortalAccess


@dataclass(frozen=True)
class Helper:
    name: str
    email: str
    team: bool  # the pooled team, not a named CSM


def revoked(engine: Engine, account_id: str, issued_at: datetime) -> bool:
    with Session(engine) as session:
        row = session.get(PortalAccess, account_id)
        return row is not None and issued_at < row.revoked_before


def revoke(engine: Engine, account_id: str, now: datetime, by: str) -> None:
    """Every link of the account issued before `now` stops opening."""
    with Session(engine) as session:
        row = session.get(PortalAccess, account_id)
        if row is None:
            row = PortalAccess(account_id=account_id, revoked_before=now, revoked_by=by)
        row.revoked_before, row.revoked_by = now, by
        session.add(row)
        session.commit()


def helper(engine: Engine, csm_id: str | None, team: Helper) -> Helper:
    if csm_id is None:
        return team
    with Session(engine) as session:
        csm = session.get(Csm, csm_id)
    return team if csm is None else Helper(csm.name, csm.email, team=False)
