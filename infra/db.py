"""Database engine and schema (migrated by Alembic: alembic.ini, migrations/).

SQLAlchemy, SQLModel and Alembic are imported where they are used: most `starter.py`
commands talk to Temporal only and should not pay for them at start.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine
    from sqlmodel import Session

    from models import tables

SessionFactory = Callable[[], "Session"]

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
MIGRATE_COMMAND = "make migrate  (or: .venv/bin/alembic upgrade head)"


class SchemaError(Exception):
    """The database's schema is not the one this code needs; the message says what to run.
    (migrations/env.py turns it into an Alembic CommandError, so `alembic upgrade` prints it
    as one line, not a traceback.)"""


def make_engine(url: str) -> Engine:
    from sqlalchemy import event
    from sqlmodel import create_engine

    from models import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

    # `postgresql://` would pick psycopg2; we ship psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        # Activities write from several threads; wait for the lock rather than fail.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Write-ahead logging: readers (the CLI, the roster's load count) no longer block the
    activities' writes, and a commit is one append instead of a journal and its fsyncs (0.4
    against 1.3 ms measured). `synchronous=FULL` keeps each commit durable when it returns: the
    outbox's claim must be on disk before its mail is sent."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def ensure_sqlite_dir(engine: Engine) -> None:
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logging"] = False  # keep the caller's logging as it is
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the schema up to date (what `make migrate` does, for the given engine)."""
    from alembic import command

    ensure_sqlite_dir(engine)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def refuse_unversioned_tables(connection: Connection) -> None:
    """Migrations start from an empty database: one whose tables were made before migrations
    existed (create_all) would fail half-way, so say what it is instead."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect

    unversioned = MigrationContext.configure(connection).get_current_revision() is None
    if unversioned and inspect(connection).has_table("onboarding"):
        raise SchemaError(
            f"{_where(connection.engine)} holds tables from before migrations existed; "
            "remove it (local .data/ only holds demo state) or migrate it by hand"
        )


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database that is not migrated to this code's schema."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "is not migrated" if current is None else f"is at revision {current}"
        raise SchemaError(
            f"{_where(engine)} {state}; this version needs revision {head}. Run: {MIGRATE_COMMAND}"
        )


def _where(engine: Engine) -> str:
    return f"the database {engine.url.render_as_string(hide_password=True)}"


def session_factory(engine: Engine) -> SessionFactory:
    from sqlmodel import Session

    return lambda: Session(engine, expire_on_commit=False)


def onboarding_row(session: Session, account_id: str) -> tables.Onboarding:
    """The account's onboarding row, which the workflow's first activity always writes."""
    from models import tables

    row = session.get(tables.Onboarding, account_id)
    if row is None:
        raise RuntimeError(f"no onboarding row for {account_id}")
    return row


def commit_once(session: Session) -> bool:
    """Commit; False when a concurrent attempt wrote the same business key first (its unique
    constraint did its job: what it wrote is what this attempt would have written)."""
    from sqlalchemy.exc import IntegrityError

    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True
