"""What every command shares: the Typer app, the consoles, errors as exit codes, the
Temporal connection, the database session, and a few formatters.

Every command module is imported for any command, `--help` too, so at the top they import
only what their options are made of (typer, the enums of models/enums.py, the names in
workflows/contract.py); the messages, the settings and what the database needs are imported
in the functions that use them. `--help` and a usage error then cost little more than Typer
itself (benchmarks/cli_startup.py measures it, tests/test_cli_startup.py keeps it so)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from infra.codec import DecryptionError
from infra.db import SchemaError, check_schema, make_engine
from workflows.contract import onboarding_id

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlmodel import Session

M = TypeVar("M", bound="BaseModel")

app = typer.Typer(
    help="Customer onboarding: start onboardings, report milestones, see where each account is.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)

# A query needs a worker to answer; say so instead of hanging.
QUERY_TIMEOUT = timedelta(seconds=10)


class Failure(Exception):
    """A refusal or failure the user should read; exit 1."""


def run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(coro)
    except Failure as failure:
        err.print(f"[red]error:[/red] {failure}", highlight=False)
        raise typer.Exit(1) from None
    except RPCError as error:
        err.print(f"[red]error:[/red] Temporal answered: {error.message}", highlight=False)
        raise typer.Exit(1) from None
    except DecryptionError as error:
        err.print(f"[red]error:[/red] cannot read what Temporal holds: {error}", highlight=False)
        raise typer.Exit(1) from None


async def connect() -> Client:
    from infra.settings import connect_temporal

    try:
        return await connect_temporal()
    except RuntimeError as error:
        address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
        raise Failure(f"cannot reach Temporal at {address} ({error}); is `make run` up?") from None


def is_not_found(error: RPCError) -> bool:
    return error.status == RPCStatusCode.NOT_FOUND


async def existing_onboarding(client: Client, account: str) -> WorkflowHandle[Any, Any]:
    handle = client.get_workflow_handle(onboarding_id(account))
    try:
        await handle.describe()
    except RPCError as error:
        if is_not_found(error):
            raise Failure(f"no onboarding for account {account}") from None
        raise
    return handle


def status_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"


def parse_time(value: str | None, option: str, *, dates: bool = False) -> datetime | None:
    """An ISO 8601 time with a zone (`2026-07-01T09:00Z`); with `dates`, also a bare day
    (`2026-07-01`, midnight UTC). Anything else is a usage error naming the option."""
    if value is None:
        return None
    from pydantic import TypeAdapter, ValidationError

    from models.journey import AwareDatetime
    from models.playbook import format_validation_error

    try:
        if dates and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return TypeAdapter(AwareDatetime).validate_python(value)
    except ValueError as error:  # pydantic's ValidationError is one too
        reason = (
            format_validation_error(error) if isinstance(error, ValidationError) else str(error)
        )
        raise typer.BadParameter(f"{value!r}: {reason}", param_hint=option) from None


def admitted(model: type[M], **fields: Any) -> M:
    """A message built from what a person typed, through the door (models/door.py): names
    and notes without control characters, times that already happened, sizes bounded. A
    refusal is a usage error (exit 2) naming the field; nothing is sent."""
    from pydantic import ValidationError

    from models.door import admit
    from models.playbook import format_validation_error

    try:
        return admit(model, fields)
    except ValidationError as error:
        raise typer.BadParameter(format_validation_error(error)) from None


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


@contextmanager
def db_session() -> Iterator[Session]:
    """A database session (roster, report); a refusal becomes exit 1 with its reason."""
    from sqlalchemy.exc import OperationalError
    from sqlmodel import Session

    from infra.roster import RosterError
    from infra.settings import load_settings

    engine = make_engine(load_settings().database_url)
    try:
        check_schema(engine)
        with Session(engine, expire_on_commit=False) as session:
            yield session
    except (RosterError, SchemaError) as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(1) from None
    except OperationalError as error:
        err.print(f"[red]error:[/red] database: {error.orig}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def split_list(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]
