"""Database engine, schema and the CSM roster seed."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, EmailStr, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, create_engine

from models import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from models.journey import Slug, TouchModel
from models.playbook import format_validation_error

SessionFactory = Callable[[], Session]


def make_engine(url: str) -> Engine:
    # `postgresql://` would pick psycopg2; we ship psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        # Activities write from several threads; wait for the lock rather than fail.
        return create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    return create_engine(url, pool_pre_ping=True)


def init_db(engine: Engine) -> None:
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    SQLModel.metadata.create_all(engine)


def session_factory(engine: Engine) -> SessionFactory:
    return lambda: Session(engine, expire_on_commit=False)


class RosterEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: str
    email: EmailStr
    touch_models: list[TouchModel]
    active: bool = True


class RosterFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    csms: list[RosterEntry]


class RosterError(Exception):
    pass


def load_roster(path: Path) -> list[RosterEntry]:
    try:
        return RosterFile.model_validate(tomllib.loads(path.read_text())).csms
    except FileNotFoundError as err:
        raise RosterError(f"{path}: no such roster file") from err
    except tomllib.TOMLDecodeError as err:
        raise RosterError(f"{path}: not valid TOML: {err}") from err
    except ValidationError as err:
        raise RosterError(f"{path}: {format_validation_error(err)}") from err


def seed_roster(session: Session, entries: list[RosterEntry]) -> int:
    """Add the CSMs the database does not know yet; existing rows are left as edited."""
    added = 0
    for entry in entries:
        if session.get(tables.Csm, entry.id) is None:
            session.add(tables.Csm(**entry.model_dump(mode="json")))
            added += 1
    session.commit()
    return added
