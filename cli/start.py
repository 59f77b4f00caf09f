"""`start`: one deal from the sales system (JSON), or many from a CSV export."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from temporalio.service import RPCError

from cli.app import Failure, app, connect, err, out, run
from cli.tables import Rows
from service.errors import ServiceError
from workflows.contract import onboarding_id

if TYPE_CHECKING:
    from models.journey import OnboardingRequest


class IfExists(StrEnum):
    FAIL = "fail"
    IGNORE = "ignore"


def read_request(path: Path) -> OnboardingRequest:
    """The deal document, through the door: bounded in size, UTF-8, valid JSON, every field
    checked; anything wrong is a Failure naming the file and where in it."""
    from pydantic import ValidationError

    from models.door import Refused, admit, decode_utf8, read_bytes
    from models.journey import OnboardingRequest
    from models.limits import MAX_DEAL_BYTES
    from models.playbook import format_validation_error

    try:
        text = decode_utf8(path, read_bytes(path, MAX_DEAL_BYTES, "deal document"))
        return admit(OnboardingRequest, text)
    except Refused as refused:
        raise Failure(str(refused)) from None
    except ValidationError as error:
        raise Failure(f"{path}: {format_validation_error(error)}") from None


@app.command()
def start(
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file", metavar="FILE", help="The deal, a JSON document (README: The deal)."
        ),
    ] = None,
    from_csv: Annotated[
        Path | None,
        typer.Option(
            "--from-csv", metavar="FILE", help="Many deals, one per row (README: Bulk start)."
        ),
    ] = None,
    if_exists: Annotated[
        IfExists,
        typer.Option(help="When the account is already onboarding: fail, or ignore (exit 0)."),
    ] = IfExists.FAIL,
    concurrency: Annotated[
        int, typer.Option(metavar="N", help="--from-csv: onboardings started at once, 1 to 64.")
    ] = 8,
) -> None:
    """Start an account's onboarding from the sales system's deal document, or many from a
    CSV export (already-onboarding accounts are reported, not started twice)."""
    if (from_file is None) == (from_csv is None):
        raise typer.BadParameter("give either --from-file FILE or --from-csv FILE")
    if not 1 <= concurrency <= 64:
        raise typer.BadParameter(f"{concurrency}: use 1 to 64", param_hint="--concurrency")
    if from_csv is not None:
        _start_batch(from_csv, concurrency)
        return
    assert from_file is not None
    from infra.settings import load_settings
    from models.playbook import PlaybookError
    from service.deals import Playbooks, start_onboarding, workflow_input

    async def go() -> None:
        request = read_request(from_file)
        try:
            onboarding = workflow_input(request, Playbooks(load_settings()))
        except PlaybookError as error:
            raise Failure(f"{from_file}: {error}") from None
        client = await connect()
        workflow_id = onboarding_id(request.account_id)
        if not await start_onboarding(client, onboarding):
            message = f"account {request.account_id} already has an onboarding ({workflow_id})"
            if if_exists is IfExists.IGNORE:
                out.print(f"{message}; nothing to do")
                return
            raise Failure(message + "; use --if-exists ignore for retries")
        out.print(f"started onboarding for {request.account_id}: workflow {workflow_id}")

    run(go())


def _start_batch(path: Path, concurrency: int) -> None:
    """Every valid row is started, at most `concurrency` at once; bad rows and failures are
    listed at the end (row, field, reason) and make the exit code 1, without stopping the
    batch. Re-running the same file starts only what is missing."""
    from rich.progress import Progress  # heavy, and only a batch shows one

    from infra.settings import load_settings
    from models.deal_csv import CsvFileError, Deal, RowError, read_deals
    from models.playbook import PlaybookError
    from service.deals import Playbooks, start_onboarding, workflow_input

    try:
        deals, errors = read_deals(path)
    except CsvFileError as error:
        raise typer.BadParameter(str(error), param_hint="--from-csv") from None
    playbooks = Playbooks(load_settings())
    started: list[str] = []
    existing: list[str] = []

    async def go() -> None:
        client = await connect()
        gate = asyncio.Semaphore(concurrency)
        with Progress(console=err, transient=False) as progress:
            bar = progress.add_task(f"starting {len(deals)} onboardings", total=len(deals))

            async def one(deal: Deal) -> None:
                async with gate:
                    try:
                        onboarding = workflow_input(deal.request, playbooks)
                        is_new = await start_onboarding(client, onboarding)
                        (started if is_new else existing).append(deal.request.account_id)
                    except PlaybookError as error:
                        errors.append(RowError(deal.row, "playbook", str(error)))
                    except (ServiceError, RPCError) as error:
                        errors.append(RowError(deal.row, "account_id", str(error)))
                    progress.advance(bar)

            await asyncio.gather(*(one(deal) for deal in deals))

    if deals:  # a file of bad rows only needs no Temporal to say so
        run(go())
    out.print(
        f"{len(started)} started, {len(existing)} already onboarding (left as they are), "
        f"{len(errors)} rows with errors"
    )
    if existing:
        out.print("already onboarding: " + ", ".join(sorted(existing)))
    if errors:
        table = Rows(("row", "field", "reason"), {"row", "field"}, f"rows not started ({path})")
        for e in sorted(errors, key=lambda e: (e.row, e.field)):
            table.add(str(e.row), e.field, e.reason)
        table.print(err)
        raise typer.Exit(1)
