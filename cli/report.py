"""`report`: the onboarding scorecard (reports/), from the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, db_session, err, out, parse_time, split_list
from reports.dimensions import DIMENSIONS


@app.command()
def report(
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="DAY",
            help="First day of the cohort (onboardings started). Default: 90 days before --to.",
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", metavar="DAY", help="End of the cohort, exclusive. Default: now."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            help="When 'now' is for overdue, retention and ticket windows. Default: now.",
        ),
    ] = None,
    by: Annotated[
        str,
        typer.Option(
            metavar="NAMES",
            show_default=False,
            help="Breakdowns, comma-separated: " + ", ".join(DIMENSIONS) + ". Default: all.",
        ),
    ] = ",".join(DIMENSIONS),
    retention_days: Annotated[
        int,
        typer.Option(
            metavar="DAYS", help="Retention: not churned this many days after completion."
        ),
    ] = 90,
    html: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Also write a self-contained HTML page with charts here."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The onboarding scorecard from the database: time to first value, activation,
    completion, retention, support tickets, the funnel; by touch model, plan, industry,
    playbook. Definitions: README, Scorecard."""
    now = datetime.now(UTC)
    until = parse_time(end, "--to", dates=True) or now
    since = parse_time(start, "--from", dates=True) or until - timedelta(days=90)
    if retention_days < 1:
        raise typer.BadParameter(f"{retention_days}: at least 1", param_hint="--retention-days")
    if since >= until:
        raise typer.BadParameter(f"must be before --to ({until:%Y-%m-%d})", param_hint="--from")
    dimensions = split_list(by) or []
    if unknown := [d for d in dimensions if d not in DIMENSIONS]:
        raise typer.BadParameter(
            f"{', '.join(unknown)} unknown; choose from {', '.join(DIMENSIONS)}",
            param_hint="--by",
        )
    if html is not None and not html.parent.is_dir():
        raise typer.BadParameter(f"no folder {html.parent}", param_hint="--html")
    with db_session() as session:
        from reports import scorecard  # the database's libraries, only for this command

        card = scorecard.build(
            session,
            since,
            until,
            as_of=parse_time(as_of, "--as-of", dates=True) or now,
            retention_days=retention_days,
            dimensions=dimensions,
        )
    if html is not None:
        from reports.html import render as render_html

        html.write_text(render_html(card), encoding="utf-8")
        err.print(f"wrote {html}")
    if as_json:
        # Written as it is: rich would re-parse and highlight it, 20 s for the distributions of
        # 100,000 onboardings (benchmarks/scorecard.py --cli).
        out.file.write(card.model_dump_json(indent=2) + "\n")
    else:
        from reports.console import print_scorecard

        print_scorecard(card, out)
