"""Database engine and schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, create_engine

from models import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

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


def onboarding_row(session: Session, account_id: str) -> tables.Onboarding:
    """The account's onboarding row, which the workflow's first activity always writes."""
    row = session.get(tables.Onboarding, account_id)
    if row is None:
        raise RuntimeError(f"no onboarding row for {account_id}")
    return row
