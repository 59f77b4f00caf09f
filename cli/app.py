"""What every command shares: the Typer app, the consoles, errors as exit codes, the
Temporal connection, the database session, and a few formatters.

Every command module is imported for any command, `--help` too, so at the top they import
only what their options are made of (typer, the enums of models/enums.py, the names in
workflows/contract.py); the messages, the settings and what the database needs are imported
in the functions that use them. `--help` and a usage error then cost little more than Typer
itself (benchmarks/cli_startup.py measures it, tests/test_cli_startup.py keeps it so)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from temporalio.client import Client
from temporalio.service import RPCError

from cli.help import App
from infra.codec import DecryptionError
from infra.db import SchemaError, check_schema, make_engine
from models.wording import human_durations
from service.errors import NoWorker, ServiceError

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlmodel import Session

M = TypeVar("M", bound="BaseModel")

app = App(
    help="Customer onboarding: start onboardings, report milestones, see where each account is.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)


class Failure(Exception):
    """A refusal or failure the user should read; exit 1."""


def error_line(message: object) -> None:
    """One line on stderr, `error: ...`. The message is printed as it is: rich would read
    `[a-z0-9]` in it as markup and drop it."""
    err.print(f"[red]error:[/red] {escape(str(message))}", highlight=False)


def note_line(message: str) -> None:
    err.print(f"[yellow]note:[/yellow] {escape(message)}", highlight=False)


def run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(coro)
    except Failure as failure:
        error_line(human_durations(str(failure)))
        raise typer.Exit(1) from None
    except NoWorker as refusal:
        hint = "is the worker running (`make run`)? `starter.py list` works without one"
        error_line(f"{refusal}; {hint}")
        raise typer.Exit(1) from None
    except ServiceError as refusal:
        error_line(refusal)
        raise typer.Exit(1) from None
    except RPCError as error:
        error_line(f"Temporal answered: {error.message}")
        raise typer.Exit(1) from None
    except DecryptionError as error:
        error_line(f"cannot read what Temporal holds: {error}")
        raise typer.Exit(1) from None


async def connect() -> Client:
    from infra.settings import TemporalUnreachable, connect_temporal

    try:
        return await connect_temporal()
    except TemporalUnreachable as error:
        raise Failure(str(error)) from None


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_time(
    value: str | None, option: str, *, dates: bool = False, ahead: bool = False
) -> datetime | None:
    """An ISO 8601 time with a zone (`2026-07-01T09:00Z`); with `dates`, also a bare day
    (`2026-07-01`, midnight UTC). Anything else is a usage error naming the option and
    saying what it takes, with examples near today (`ahead`: for a time to come)."""
    if value is None:
        return None
    try:
        if dates and _DAY.fullmatch(value.strip()):
            return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)
        # Python reads ISO 8601 as pydantic does for these forms, `Z` included.
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a time; use {time_examples(dates=dates, ahead=ahead)}",
            param_hint=option,
        ) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} has no time zone; add Z for UTC or an offset such as +02:00, "
            f"e.g. {value.strip()}Z",
            param_hint=option,
        )
    return parsed


def time_examples(*, dates: bool, ahead: bool = False) -> str:
    """What a time option takes, said with dates near today."""
    day = (datetime.now(UTC) + timedelta(days=7 if ahead else -1)).date()
    a_time = f"a time with its zone like {day}T09:00Z or {day}T09:00+02:00"
    return f"a date like {day} or {a_time}" if dates else a_time


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AMOUNT = re.compile(r"\+?\s*(\d{1,9})\s*([smhdw])")


def parse_amount(value: str) -> timedelta | None:
    """`+7d`, `7d`, `36h`, `2w`, `30m`, `90s` as a timedelta; None when it is none of those."""
    match = _AMOUNT.fullmatch(value.strip().lower())
    if match is None:
        return None
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


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
        error_line(error)
        raise typer.Exit(1) from None
    except OperationalError as error:
        error_line(f"database: {error.orig}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def split_list(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]
