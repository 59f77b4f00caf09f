"""What the figures of a set of onboardings are computed from: counts, and the raw values
behind the medians. Tallies add up, so the database is asked once per cell (one combination
of the breakdowns' values: touch model, plan, industry, playbook) and every breakdown, and
the overall figures, are sums of cells.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from reports.figures import (
    FUNNEL,
    FUNNEL_ROWS,
    TICKET_WINDOWS,
    Completion,
    Distributions,
    Figures,
    Rate,
    StageFigures,
    Tickets,
    TimeToFirstValue,
)

Cell = tuple[str, ...]
"""One value per breakdown asked for, in the order asked."""


@dataclass
class Tally:
    onboardings: int = 0
    ttfv_days: list[float] = field(default_factory=list)
    activated: int = 0
    completed: int = 0
    cancelled: int = 0
    lapsed: int = 0
    retention_due: int = 0
    """Completed at least the retention period before `as_of`."""
    retained: int = 0
    """Of those, not churned within the period."""
    tickets: Counter[int] = field(default_factory=Counter)
    """Per ticket window (days): tickets opened in the customer's first days, over the
    customers that old (`matured`)."""
    matured: Counter[int] = field(default_factory=Counter)
    now: Counter[str] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)
    stage_days: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Days spent in each stage, over the stays that ended."""

    def add(self, other: Tally) -> None:
        self.onboardings += other.onboardings
        self.ttfv_days += other.ttfv_days
        self.activated += other.activated
        self.completed += other.completed
        self.cancelled += other.cancelled
        self.lapsed += other.lapsed
        self.retention_due += other.retention_due
        self.retained += other.retained
        self.tickets.update(other.tickets)
        self.matured.update(other.matured)
        self.now.update(other.now)
        self.reached.update(other.reached)
        for stage, days in other.stage_days.items():
            self.stage_days[stage] += days

    @classmethod
    def total(cls, tallies: Iterable[Tally]) -> Tally:
        total = cls()
        for tally in tallies:
            total.add(tally)
        return total

    def figures(self) -> Figures:
        """The figures (sorting the values in place, once: the medians and the distributions
        read them sorted)."""
        ttfv = self.ttfv_days
        ttfv.sort()
        for days in self.stage_days.values():
            days.sort()
        judged = self.completed + self.cancelled + self.lapsed
        return Figures(
            onboardings=self.onboardings,
            time_to_first_value=TimeToFirstValue(
                median_days=_median(ttfv), p90_days=_p90(ttfv), count=len(ttfv)
            ),
            activation=_rate(self.activated, self.onboardings),
            completion=Completion(
                rate=self.completed / judged if judged else None,
                count=self.completed,
                of=judged,
                completed=self.completed,
                cancelled=self.cancelled,
                lapsed=self.lapsed,
            ),
            retention=_rate(self.retained, self.retention_due),
            support_tickets=[
                Tickets(
                    days=days,
                    per_customer=(
                        self.tickets[days] / self.matured[days] if self.matured[days] else None
                    ),
                    tickets=self.tickets[days],
                    customers=self.matured[days],
                )
                for days in TICKET_WINDOWS
            ],
            funnel={
                str(stage): StageFigures(
                    now=self.now[stage],
                    reached=self.reached[stage],
                    median_days=_median(self.stage_days.get(stage, []))
                    if stage in FUNNEL
                    else None,
                )
                for stage in FUNNEL_ROWS
            },
        )

    def distributions(self) -> Distributions:
        """The values behind the medians, sorted."""
        return Distributions(
            time_to_first_value_days=sorted(self.ttfv_days),
            stage_days={str(stage): sorted(self.stage_days.get(stage, [])) for stage in FUNNEL},
        )


def _rate(count: int, of: int) -> Rate:
    return Rate(rate=count / of if of else None, count=count, of=of)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _p90(values: list[float]) -> float | None:
    """The 90th percentile, interpolated between the closest ranks (as spreadsheets do)."""
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=10, method="inclusive")[-1]
