"""The scorecard in the terminal: rich tables, the same figures as --json and --html, laid out
to read in 80 columns (the overall figures one per line, the breakdowns as rates with the
counts they come from in --json)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from reports.figures import Figures, Scorecard


def print_scorecard(card: Scorecard, console: Console) -> None:
    console.print(
        f"[bold]Onboarding scorecard[/bold]: started {card.start:%Y-%m-%d %H:%M} to "
        f"{card.end:%Y-%m-%d %H:%M} UTC (exclusive), as of {card.as_of:%Y-%m-%d %H:%M} UTC; "
        f"retention after {card.retention_days} days"
    )
    console.print(_overall(card.overall))

    funnel = Table(title="funnel", box=box.SIMPLE_HEAD)
    for column in ("stage", "now", "reached", "median time in stage"):
        funnel.add_column(column, justify="left" if column == "stage" else "right")
    for stage, s in card.overall.funnel.items():
        funnel.add_row(stage, str(s.now), str(s.reached), _days(s.median_days))
    console.print(funnel)

    for dimension, groups in card.by.items():
        title = f"by {dimension.replace('_', ' ')} (TTFV in days, tickets per customer)"
        # No padding: the box's own column gap separates them (80 columns hold all nine).
        table = Table(title=title, box=box.SIMPLE_HEAD, padding=0)
        table.add_column("", overflow="fold")
        for column in BREAKDOWN:
            table.add_column(column, justify="right")
        for value, figures in groups.items():
            table.add_row(value, *_breakdown(figures))
        console.print(table)


def _overall(f: Figures) -> Table:
    ttfv, c = f.time_to_first_value, f.completion
    table = Table(title="overall", box=box.SIMPLE_HEAD, show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("from")
    rows = [
        ("onboardings", str(f.onboardings), "started in the range"),
        ("time to first value, median", _days(ttfv.median_days), f"{ttfv.count} reached it"),
        ("time to first value, p90", _days(ttfv.p90_days), ""),
        ("activation", _pct(f.activation.rate), f"{f.activation.count} of {f.activation.of}"),
        (
            "completion",
            _pct(c.rate),
            f"{c.completed} of {c.of}: {c.cancelled} cancelled, {c.lapsed} lapsed",
        ),
        ("retention", _pct(f.retention.rate), f"{f.retention.count} of {f.retention.of}"),
    ]
    for days, tickets in zip((30, 90), f.support_tickets, strict=True):
        per = "-" if tickets.per_customer is None else f"{tickets.per_customer:.2f}"
        rows.append(
            (f"tickets per customer, first {days} days", per, f"{tickets.customers} old enough")
        )
    for row in rows:
        table.add_row(*row)
    return table


# Headers broken where a narrow terminal would break them anyway.
BREAKDOWN = [
    *("onboard-\nings", "TTFV\nmedian", "TTFV\np90", "activ-\nation", "comple-\ntion"),
    *("reten-\ntion", "tickets\n30 d", "tickets\n90 d"),
]


def _breakdown(f: Figures) -> list[str]:
    ttfv = f.time_to_first_value
    return [
        str(f.onboardings),
        _number(ttfv.median_days),
        _number(ttfv.p90_days),
        _pct(f.activation.rate),
        _pct(f.completion.rate),
        _pct(f.retention.rate),
        *("-" if t.per_customer is None else f"{t.per_customer:.2f}" for t in f.support_tickets),
    ]


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} d"
