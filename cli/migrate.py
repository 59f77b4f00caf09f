"""`starter.py migrate`: move running onboardings to the playbook file as it is now, after a
preview of what changes for each (README: *Changing a playbook for running onboardings*)."""

from __future__ import annotations

import asyncio
import json
import shlex
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from cli.app import Failure, app, connect, err, out, run, when

if TYPE_CHECKING:
    from models.migration import Change, MigrationPlan, PlaybookOffer

MARKS = {
    "added": "+",
    "removed": "-",
    "moved": "~",
    "reminder": "~",
    "changed": "~",
    "kept": "=",
    "refused": "!",
}


@app.command()
def migrate(
    playbook: Annotated[
        str, typer.Option(metavar="NAME", help="The playbook file (playbooks/NAME.toml) to adopt.")
    ],
    preview: Annotated[
        bool, typer.Option("--preview", help="Say what would change for each run; change nothing.")
    ] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Change each run as its preview says.")
    ] = False,
    where: Annotated[
        str | None,
        typer.Option(
            metavar="QUERY",
            help="Only the runs this visibility query lets through, as the Web UI takes it: "
            "e.g. 'OnboardingStage=\"adopt\"' or 'CsmId=\"csm-007\"'.",
        ),
    ] = None,
    by: Annotated[
        str | None, typer.Option(metavar="ID", help="Who applies it (required with --apply).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option(metavar="N", help="Runs worked on at once, 1 to 50.")
    ] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Preview, then apply, a playbook's new version to the onboardings already running on it.

    Exit codes: 0 every run changed (or, with --preview, could be previewed); 1 a run refused
    part of the change or could not be changed (the summary names them); 2 wrong usage."""
    if preview == apply:
        raise typer.BadParameter("say --preview or --apply (one of them)")
    if not 1 <= concurrency <= 50:
        raise typer.BadParameter(f"{concurrency}: use 1 to 50", param_hint="--concurrency")
    if apply and not (by and by.strip()):
        raise typer.BadParameter("--apply needs --by ID (who applies it)", param_hint="--by")
    offer = _offer(playbook)
    run(_migrate(offer, where, by.strip() if apply and by else None, concurrency, as_json))


def _offer(name: str) -> PlaybookOffer:
    """The playbook file as it is now, checked whole (an unknown or broken one: usage error
    naming --playbook and, for a broken one, the field)."""
    from infra.settings import load_settings
    from models.migration import PlaybookOffer
    from models.playbook import PlaybookError
    from service.deals import Playbooks

    try:
        return PlaybookOffer(name=name, file=Playbooks(load_settings()).playbook(name))
    except PlaybookError as error:
        raise typer.BadParameter(f"{error}; nothing changed", param_hint="--playbook") from None


async def _migrate(
    offer: PlaybookOffer, where: str | None, by: str | None, concurrency: int, as_json: bool
) -> None:
    from rich.progress import Progress

    from service.errors import ServiceError
    from service.migrations import apply, preview, running_onboardings

    client = await connect()
    ids = [workflow_id async for workflow_id in running_onboardings(client, where)]
    if not ids:
        matched = f" matching --where {where!r}" if where else ""
        raise Failure(f"no running onboarding{matched}; nothing changed")
    plans: list[MigrationPlan] = []
    failed: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)
    verb = "applying" if by else "previewing"
    with Progress(console=err, transient=True, disable=as_json) as progress:
        bar = progress.add_task(f"{verb} {offer.name} {offer.file.version()}", total=len(ids))

        async def one(workflow_id: str) -> None:
            async with gate:
                try:
                    plan = await preview(client, workflow_id, offer)
                    if by and plan.playbook == offer.name and not plan.up_to_date:
                        plan = await apply(client, workflow_id, offer, by, plan.digest)
                    plans.append(plan)
                except ServiceError as error:
                    failed[workflow_id] = str(error)
                progress.advance(bar)

        await asyncio.gather(*(one(workflow_id) for workflow_id in ids))
    plans.sort(key=lambda plan: plan.account_id)
    if as_json:
        _print_json(offer, plans, failed, applied=by is not None)
    else:
        _print_plans(offer, plans, failed, applied=by is not None, where=where)
    refused = [p for p in plans if p.playbook == offer.name and p.refused]
    if failed or (by and refused):
        raise typer.Exit(1)


def _print_plans(
    offer: PlaybookOffer,
    plans: list[MigrationPlan],
    failed: dict[str, str],
    applied: bool,
    where: str | None,
) -> None:
    ours = [p for p in plans if p.playbook == offer.name]
    changing = [p for p in ours if not p.up_to_date]
    for plan in changing:
        out.print(
            f"[bold]{plan.account_id}[/bold] ({plan.stage}): playbook {plan.playbook} "
            f"{plan.from_version or 'unversioned'} → {plan.to_version}"
            + (" [green]applied[/green]" if plan.applied else ""),
            highlight=False,
        )
        for change in plan.changes:
            out.print(f"  {MARKS[change.kind]} {escape(describe(change))}", highlight=False)
        if not plan.changes:
            out.print("  (the same plan; only the version is recorded)", highlight=False)
    for workflow_id, reason in sorted(failed.items()):
        out.print(f"[red]{workflow_id}: not changed[/red]: {escape(reason)}", highlight=False)
    refused = sum(1 for p in changing if p.refused)
    done = "changed" if applied else "would change"
    out.print(
        f"{len(ours)} running onboarding(s) on {offer.name}: {len(changing)} {done}"
        f" ({refused} with parts refused), {len(ours) - len(changing)} already on "
        f"{offer.file.version()}; {len(plans) - len(ours)} on other playbooks"
        + (f"; {len(failed)} failed" if failed else ""),
        highlight=False,
    )
    if changing and not applied:
        scope = f" --where {shlex.quote(where)}" if where else ""
        out.print(
            f"apply with: starter.py migrate --playbook {offer.name}{scope} --apply --by YOUR-ID",
            highlight=False,
        )


def _print_json(
    offer: PlaybookOffer, plans: list[MigrationPlan], failed: dict[str, str], applied: bool
) -> None:
    ours = [
        p.model_dump(mode="json") | {"digest": p.digest} for p in plans if p.playbook == offer.name
    ]
    document = {
        "playbook": offer.name,
        "version": offer.file.version(),
        "applied": applied,
        "runs": ours,
        "failed": failed,
    }
    out.print_json(json.dumps(document, ensure_ascii=False))


def describe(change: Change) -> str:
    """One change in a line: `task configure: 2026-12-05 09:00 UTC → 2026-12-12 09:00 UTC (+7d)`."""
    if change.before_at is not None or change.after_at is not None:
        what = f"{when(change.before_at)} → {when(change.after_at)}"
        if change.before_at is None:
            what = f"due {when(change.after_at)}"
        if change.after_at is None and change.kind == "removed":
            what = f"was due {when(change.before_at)}"
        if change.shift:
            what += f" ({_signed(change.shift)})"
    elif change.before is not None or change.after is not None:
        what = f"{change.before or '-'} → {change.after or '-'}"
    else:
        what = ""
    if change.kind == "added" and change.after:
        what = f"{change.after!r}, {what}"
    parts = [p for p in (what, change.note) if p]
    label = (
        f"{change.subject} ({change.kind})"
        if change.kind in ("refused", "kept")
        else change.subject
    )
    return f"{label}: {'; '.join(parts)}" if parts else label


def _signed(shift: timedelta) -> str:
    from models.playbook import spoken

    return ("-" if shift < timedelta(0) else "+") + spoken(abs(shift))
