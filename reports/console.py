"""The scorecard in the terminal: rich tables, the same figures as --json and --html."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from reports.figures import Figures, Scorecard


def print_scorecard(card: Scorecard, console: Console) -> None:
    console.print(
        f"[bold]Onboarding scorecard[/bold]: started {card.start:%Y-%m-%d %H:%M} to "
        f"{card.end:%Y-%m-%d %H:%M} UTC (exclusive), as of {card.as_of:%Y-%m-%d %H:%M} UTC; "
        f"retention after {card.retention_days} days"
    )
    overall = _figures_table("overall")
    _add(overall, "all", card.overall)
    console.print(overall)

    funnel = Table(title="funnel")
    for column in ("stage", "now", "reached", "median time in stage"):
        funnel.add_column(column, justify="left" if column == "stage" else "right")
    for stage, s in card.overall.funnel.items():
        funnel.add_row(stage, str(s.now), str(s.reached), _days(s.median_days))
    console.print(funnel)

    for dimension, groups in card.by.items():
        table = _figures_table(f"by {dimension.replace('_', ' ')}")
        for value, figures in groups.items():
            _add(table, value, figures)
        console.print(table)


def _figures_table(title: str) -> Table:
    table = Table(title=title)
    table.add_column("")
    for column in (
        "onboardings",
        "TTFV median",
        "TTFV p90",
        "TTFV n",
        "activation",
        "completion",
        "retention",
        "tickets/cust 30d",
        "tickets/cust 90d",
    ):
        table.add_column(column, justify="right")
    return table


def _add(table: Table, label: str, f: Figures) -> None:
    ttfv = f.time_to_first_value
    c = f.completion
    table.add_row(
        label,
        str(f.onboardings),
        _days(ttfv.median_days),
        _days(ttfv.p90_days),
        str(ttfv.count),
        f"{_pct(f.activation.rate)} ({f.activation.count}/{f.activation.of})",
        f"{_pct(c.rate)} ({c.completed}/{c.of}: {c.cancelled} cancelled, {c.lapsed} lapsed)",
        f"{_pct(f.retention.rate)} ({f.retention.count}/{f.retention.of})",
        *(
            "-" if t.per_customer is None else f"{t.per_customer:.2f} ({t.customers})"
            for t in f.support_tickets
        ),
    )


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} d"
