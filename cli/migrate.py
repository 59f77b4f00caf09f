"""`starter.py migrate`: move running onboardings to the playbook file as it is now, after a
preview of what changes for each (README: *Changing a playbook for running onboardings*)."""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from temporalio.client import Client
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from cli.app import Failure, app, connect, err, out, run, when
from service.errors import ServiceError

if TYPE_CHECKING:
    from models.migration import Change, MigrationPlan
    from models.playbook import PlaybookFile

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
    version: Annotated[
        str | None,
        typer.Option(
            metavar="HASH",
            help="With --apply: only if the file is still at this version (the one previewed).",
        ),
    ] = None,
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

    Exit codes: 0 done (every run changed, or could be previewed); 1 a run could not be
    changed, or nothing matched (the summary says which and why); 2 wrong usage; 3 applied,
    with parts the rules refused for some runs (the `!` lines)."""
    if preview == apply:
        raise typer.BadParameter("say --preview or --apply (one of them)")
    if not 1 <= concurrency <= 50:
        raise typer.BadParameter(f"{concurrency}: use 1 to 50", param_hint="--concurrency")
    if apply and not (by and by.strip()):
        raise typer.BadParameter("--apply needs --by ID (who applies it)", param_hint="--by")
    name, file = _playbook(playbook)
    if version is not None and version.strip() != file.version():
        raise typer.BadParameter(
            f"{playbook}.toml is now at version {file.version()}, not {version.strip()}: it "
            "changed since that preview; preview it again",
            param_hint="--version",
        )
    by = by.strip() if apply and by else None
    run(_migrate(name, file, Scope(where, by, concurrency, as_json)))


@dataclass(frozen=True)
class Scope:
    where: str | None
    by: str | None
    """Who applies it; None: a preview."""
    concurrency: int
    as_json: bool


def _playbook(name: str) -> tuple[str, PlaybookFile]:
    """The playbook file as it is now, checked whole (an unknown or broken one: usage error
    naming --playbook and, for a broken one, the field)."""
    from infra.settings import load_settings
    from models.playbook import PlaybookError
    from service.deals import Playbooks

    try:
        return name, Playbooks(load_settings()).playbook(name)
    except PlaybookError as error:
        raise typer.BadParameter(f"{error}; nothing changed", param_hint="--playbook") from None


async def _migrate(name: str, file: PlaybookFile, scope: Scope) -> None:
    from rich.progress import Progress

    from service.migrations import running_onboardings

    client = await connect()
    ids = [workflow_id async for workflow_id in running_onboardings(client, scope.where)]
    if not ids:
        matched = f" matching --where {scope.where!r}" if scope.where else ""
        raise Failure(f"no running onboarding{matched}; nothing changed")
    plans: list[MigrationPlan] = []
    failed: dict[str, str] = {}
    gate = asyncio.Semaphore(scope.concurrency)
    verb = "applying" if scope.by else "previewing"
    with Progress(console=err, transient=True, disable=scope.as_json) as progress:
        bar = progress.add_task(f"{verb} {name} {file.version()}", total=len(ids))

        async def one(workflow_id: str) -> None:
            async with gate:
                try:
                    plans.append(await _one(client, workflow_id, name, file, scope.by))
                except (ServiceError, RPCError, TemporalError) as error:
                    failed[workflow_id] = getattr(error, "message", None) or str(error)
                progress.advance(bar)

        await asyncio.gather(*(one(workflow_id) for workflow_id in ids))
    plans.sort(key=lambda plan: plan.account_id)
    report = Report(name, file.version(), plans, failed, applied=scope.by is not None)
    if scope.as_json:
        out.print_json(json.dumps(report.document(), ensure_ascii=False))
    else:
        report.print(scope.where)
    if failed:
        raise typer.Exit(1)
    if scope.by and report.refused:
        raise typer.Exit(3)


async def _one(
    client: Client, workflow_id: str, name: str, file: PlaybookFile, by: str | None
) -> MigrationPlan:
    """One run: its preview as of now, then (`by`) the apply of exactly that."""
    from models.migration import PlaybookOffer
    from service.migrations import apply, preview

    offer = PlaybookOffer(name=name, file=file, as_of=datetime.now(UTC))
    plan = await preview(client, workflow_id, offer)
    if by and plan.playbook == name and not plan.ended and not plan.up_to_date:
        plan = await apply(client, workflow_id, offer, by, plan)
    return plan


@dataclass
class Report:
    name: str
    version: str
    plans: list[MigrationPlan]
    failed: dict[str, str]
    applied: bool

    @property
    def ours(self) -> list[MigrationPlan]:
        return [p for p in self.plans if p.playbook == self.name and not p.ended]

    @property
    def changing(self) -> list[MigrationPlan]:
        return [p for p in self.ours if not p.up_to_date]

    @property
    def refused(self) -> list[MigrationPlan]:
        return [p for p in self.changing if p.refused]

    def common(self) -> list[str]:
        """The lines every changing run shares (a setting, a passed stage's refusal): said
        once above the runs rather than once for each of hundreds."""
        lines = [[line(change) for change in plan.changes] for plan in self.changing]
        if len(lines) < 2:
            return []
        shared = set(lines[0]).intersection(*lines[1:])
        return [text for text in lines[0] if text in shared]

    def print(self, where: str | None) -> None:
        common = self.common()
        if common:
            out.print(f"[bold]every run[/bold] ({len(self.changing)}):", highlight=False)
            for text in common:
                out.print(f"  {escape(text)}", highlight=False)
        for plan in self.changing:
            out.print(
                f"[bold]{plan.account_id}[/bold] ({plan.stage}): playbook {plan.playbook} "
                f"{plan.from_version or 'unversioned'} → {plan.to_version}"
                + (" [green]applied[/green]" if plan.applied else ""),
                highlight=False,
                soft_wrap=True,
            )
            own = [text for text in map(line, plan.changes) if text not in common]
            for text in own:
                out.print(f"  {escape(text)}", highlight=False)
            if not plan.changes:
                out.print("  (the same plan; only the version is recorded)", highlight=False)
            elif not own:
                out.print("  (only what every run gets)", highlight=False)
        for workflow_id, reason in sorted(self.failed.items()):
            out.print(f"[red]{workflow_id}: not changed[/red]: {escape(reason)}", highlight=False)
        ended = [p for p in self.plans if p.playbook == self.name and p.ended]
        done = "changed" if self.applied else "would change"
        out.print(
            f"{len(self.ours)} running onboarding(s) on {self.name}: {len(self.changing)} {done}"
            f" ({len(self.refused)} with parts refused), {len(self.ours) - len(self.changing)} "
            f"already on {self.version}; {len(self.plans) - len(self.ours) - len(ended)} on "
            "other playbooks"
            + (f"; {len(ended)} ending, left as they are" if ended else "")
            + (f"; {len(self.failed)} failed" if self.failed else ""),
            highlight=False,
            soft_wrap=True,  # a line each, whatever the terminal's width
        )
        if self.changing and not self.applied:
            scope = f" --where {shlex.quote(where)}" if where else ""
            out.print(
                f"apply with: starter.py migrate --playbook {self.name}{scope} --apply "
                f"--version {self.version} --by YOUR-ID",
                highlight=False,
                soft_wrap=True,  # a command to copy: never wrapped
            )

    def document(self) -> dict[str, object]:
        return {
            "playbook": self.name,
            "version": self.version,
            "applied": self.applied,
            "runs": [p.model_dump(mode="json") | {"digest": p.digest} for p in self.ours],
            "failed": self.failed,
        }


def line(change: Change) -> str:
    return f"{MARKS[change.kind]} {describe(change)}"


def describe(change: Change) -> str:
    """One change in a line: `task configure: 2026-12-05 09:00 UTC → 2026-12-12 09:00 UTC (+7d)`."""
    what = ""
    if change.kind == "added":
        what = f'"{change.after}", due {when(change.after_at)}'
    elif change.kind == "removed":
        what = f"was due {when(change.before_at)}"
    elif change.before_at is not None or change.after_at is not None:
        what = f"{when(change.before_at)} → {when(change.after_at)}"
        if change.shift:
            what += f" ({_signed(change.shift)})"
    elif change.before is not None or change.after is not None:
        what = f"{change.before or '-'} → {change.after or '-'}"
    parts = [p for p in (what, change.note) if p]
    label = change.subject
    if change.kind in ("refused", "kept"):
        label += f" ({change.kind})"
    return f"{label}: {'; '.join(parts)}" if parts else label


def _signed(shift: timedelta) -> str:
    from models.playbook import spoken

    return ("-" if shift < timedelta(0) else "+") + spoken(abs(shift))
