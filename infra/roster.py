"""The CSM roster: the seed file, and the data functions behind `starter.py csm`.

The database holds the roster; `playbooks/csms.toml` only seeds CSMs it does not know yet,
so edits made with `starter.py csm update` survive a worker restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

from models.door import admit
from models.journey import Contact, Email, Name, Slug, Text, TouchModel
from models.playbook import format_validation_error, load_toml
from models.tables import Csm, Onboarding


class RosterEntry(BaseModel):
    """A CSM as the roster file and `starter.py csm add` give them."""

    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Name
    email: Email
    touch_models: list[TouchModel] = Field(min_length=1)
    industries: list[Name] = []
    chat: Text | None = Field(default=None, description="e.g. their Slack handle")
    capacity: int = Field(default=25, ge=0, description="Most active onboardings at once.")
    active: bool = True


class RosterFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: Contact = Field(
        description="The pooled queue: where onboardings wait when no CSM has capacity "
        "(the CS lead reads it)."
    )
    csms: list[RosterEntry]


class RosterError(Exception):
    """A roster file or change that cannot be used; the message says what is wrong."""


def load_roster(path: Path) -> RosterFile:
    return load_toml(path, RosterFile, RosterError)


def seed_roster(session: Session, entries: list[RosterEntry]) -> int:
    """Add the CSMs the database does not know yet; existing rows are left as edited."""
    added = 0
    for entry in entries:
        if session.get(Csm, entry.id) is None:
            session.add(Csm(**entry.model_dump(mode="json")))
            added += 1
    session.commit()
    return added


def active_loads(session: Session, *, excluding: str | None = None) -> dict[str, int]:
    """Open onboardings (not closed: completed, cancelled, lapsed) per CSM."""
    query = (
        select(Onboarding.csm_id, func.count())
        .where(col(Onboarding.closed_at).is_(None))
        .where(col(Onboarding.csm_id).is_not(None))
        .group_by(Onboarding.csm_id)
    )
    if excluding is not None:
        query = query.where(Onboarding.account_id != excluding)
    return dict(session.exec(query).all())  # type: ignore[arg-type]


def queued(session: Session) -> list[Onboarding]:
    """Active onboardings waiting in the pooled queue, oldest first."""
    return list(
        session.exec(
            select(Onboarding)
            .where(col(Onboarding.queued_since).is_not(None))
            .where(col(Onboarding.csm_id).is_(None))
            .where(col(Onboarding.closed_at).is_(None))
            .order_by(col(Onboarding.queued_since))
        ).all()
    )


def add_csm(session: Session, *, entry: RosterEntry) -> Csm:
    if session.get(Csm, entry.id) is not None:
        raise RosterError(f"{entry.id} is already on the roster; use `csm update`")
    row = Csm(**entry.model_dump(mode="json"))
    session.add(row)
    session.commit()
    return row


def update_csm(session: Session, *, csm_id: str, changes: Mapping[str, object]) -> Csm:
    """Apply `changes` (only the fields given), validated as a whole roster entry."""
    row = _existing(session, csm_id)
    current = row.model_dump(exclude={"id"})
    try:
        entry = admit(RosterEntry, {"id": csm_id, **current, **changes})
    except ValidationError as err:
        raise RosterError(format_validation_error(err)) from None
    for field, value in entry.model_dump(mode="json", exclude={"id"}).items():
        setattr(row, field, value)
    session.add(row)
    session.commit()
    return row


def remove_csm(session: Session, *, csm_id: str) -> str:
    """Take a CSM off the roster: refused while they have active onboardings. The row stays,
    inactive, because past onboardings refer to it and so the seed file does not bring the CSM
    back at the next worker start."""
    row = _existing(session, csm_id)
    active = session.exec(
        select(Onboarding.account_id)
        .where(Onboarding.csm_id == csm_id)
        .where(col(Onboarding.closed_at).is_(None))
    ).all()
    if active:
        raise RosterError(
            f"{csm_id} still has {len(active)} active onboarding(s): {', '.join(sorted(active))}; "
            "move them with `starter.py reassign ACCOUNT --to CSM`"
        )
    row.active = False
    session.add(row)
    session.commit()
    return f"removed {csm_id}: they take no new onboardings (kept, inactive, for the record)"


def _existing(session: Session, csm_id: str) -> Csm:
    row = session.get(Csm, csm_id)
    if row is None:
        known = ", ".join(session.exec(select(Csm.id).order_by(Csm.id)).all()) or "none"
        raise RosterError(f"no CSM {csm_id!r} on the roster (known: {known})")
    return row
