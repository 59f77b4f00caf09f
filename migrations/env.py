"""Alembic's entry point: migrates the database DATABASE_URL names (or the connection
`db.migrate` hands over) to the SQLModel metadata of models/tables.py."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from sqlalchemy import Connection
from sqlmodel import SQLModel

from infra import db
from infra.settings import Settings
from models import tables  # noqa: F401  (registers the tables on SQLModel.metadata)


class UnmigratableSchema(db.SchemaError, CommandError):
    """A SchemaError to whoever migrates by code (infra.db.migrate), and an Alembic
    CommandError to `alembic upgrade`, which prints it as one line, not a traceback."""


config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

# SQLite cannot ALTER most things: batch mode rebuilds the table instead.
OPTIONS = {"target_metadata": SQLModel.metadata, "render_as_batch": True, "compare_type": True}


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    context.configure(
        url=db.make_engine(Settings().database_url).url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:  # db.migrate hands over its own engine's connection
        _run(given)
        return
    engine = db.make_engine(Settings().database_url)
    db.ensure_sqlite_dir(engine)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _run(connection: Connection) -> None:
    try:
        db.refuse_unversioned_tables(connection)
    except db.SchemaError as error:
        raise UnmigratableSchema(str(error)) from None
    context.configure(connection=connection, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
