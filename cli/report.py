"""`report`: the onboarding scorecard (reports/), from the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, db_session, err, out, split_list
from reports import scorecard
from reports.console import print_scorecard
from reports.html import render as render_html


def _day_or_time(value: str | None, option: str) -> datetime | None:
    """`2026-07-01` (midnight UTC) or an ISO 8601 time with a zone."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (2026-07-01) or a time with a zone", param_hint=option
        ) from None
    if parsed.tzinfo is None:
        if len(value) > 10:
            raise typer.BadParameter(f"{value!r} needs a zone, e.g. +00:00", param_hint=option)
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


@app.command()
def report(
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First day of the cohort (onboardings started). Default: 90 days before --to.",
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="End of the cohort, exclusive. Default: now.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="When 'now' is for overdue, retention and ticket windows. Default: now."),
    ] = None,
    by: Annotated[
        str, typer.Option(help="Breakdowns, comma-separated: " + ", ".join(scorecard.DIMENSIONS))
    ] = ",".join(scorecard.DIMENSIONS),
    retention_days: Annotated[
        int, typer.Option(min=1, help="Retention: not churned this many days after completion.")
    ] = 90,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML page with charts here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The onboarding scorecard from the database: time to first value, activation,
    completion, retention, support tickets, the funnel; by touch model, plan, industry,
    playbook. Definitions: README, Scorecard."""
    now = datetime.now(UTC)
    until = _day_or_time(end, "--to") or now
    since = _day_or_time(start, "--from") or until - timedelta(days=90)
    if since >= until:
        raise typer.BadParameter(f"must be before --to ({until:%Y-%m-%d})", param_hint="--from")
    dimensions = split_list(by) or []
    if unknown := [d for d in dimensions if d not in scorecard.DIMENSIONS]:
        raise typer.BadParameter(
            f"{', '.join(unknown)} unknown; choose from {', '.join(scorecard.DIMENSIONS)}",
            param_hint="--by",
        )
    if html is not None and not html.parent.is_dir():
        raise typer.BadParameter(f"no folder {html.parent}", param_hint="--html")
    with db_session() as session:
        card = scorecard.build(
            session,
            since,
            until,
            as_of=_day_or_time(as_of, "--as-of") or now,
            retention_days=retention_days,
            dimensions=dimensions,
        )
    if html is not None:
        html.write_text(render_html(card), encoding="utf-8")
        err.print(f"wrote {html}")
    if as_json:
        out.print_json(card.model_dump_json())
    else:
        print_scorecard(card, out)
