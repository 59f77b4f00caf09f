"""The scorecard on a hand-built dataset (SQLite and PostgreSQL): every figure is worked out
in the test from the rows below, and `starter.py report` prints, exports and refuses as the
README says."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from infra.db import make_engine
from models.journey import Stage
from models.tables import Onboarding, StageTransition, SupportTicket, Task
from reports import html, postgres, rows, scorecard
from reports.cohort import Cohort
from reports.dimensions import DIMENSIONS
from reports.tally import Tally
from tests.conftest import ROOT, T0


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


AS_OF_DAY = 200
AS_OF = day(AS_OF_DAY)
START, END = day(0), day(100)


def customer(
    session: Session,
    account: str,
    start: float,
    touch_model: str,
    plan: str,
    industry: str,
    stage: str,
    *,
    signed: float | None = None,
    first_value: float | None = None,
    completed: float | None = None,
    cancelled: float | None = None,
    lapsed: float | None = None,
    churned: float | None = None,
    lapses: float | None = None,
    adopt_tasks: tuple[bool | None, ...] = (),
    tickets: tuple[float, ...] = (),
    stays: dict[str, tuple[float, float | None]] | None = None,
) -> None:
    """One onboarding as the activities would have recorded it. `adopt_tasks`: True done,
    False open (both required), None an optional open task."""
    on = lambda n: None if n is None else day(n)  # noqa: E731
    session.add(
        Onboarding(
            account_id=account,
            workflow_id=f"onboarding-{account}",
            account_name=account.title(),
            plan=plan,
            touch_model=touch_model,
            industry=industry,
            use_case="reporting",
            contract_value=1000,
            playbook="standard",
            account_executive_id="ae-001",
            champion_email=f"champion@{account}.example",
            stage=stage,
            started_at=day(start),
            contract_signed_at=on(signed),
            first_value_at=on(first_value),
            completed_at=on(completed),
            cancelled_at=on(cancelled),
            lapsed_at=on(lapsed),
            closed_at=on(next((n for n in (completed, cancelled, lapsed) if n is not None), None)),
            churned_at=on(churned),
            lapses_at=on(lapses),
        )
    )
    session.flush()  # the parent row first: PostgreSQL checks the foreign keys at once
    for n, done in enumerate(adopt_tasks):
        session.add(
            Task(
                account_id=account,
                task_id=f"t{n}",
                stage="adopt",
                title=f"task {n}",
                owner="customer",
                required=done is not None,
                due_at=day(start + 30),
                done_at=day(start + 20) if done else None,
            )
        )
    for n, at in enumerate(tickets):
        session.add(SupportTicket(account_id=account, ticket=f"T-{n}", opened_at=day(at)))
    for stage_name, (entered, exited) in (stays or {}).items():
        session.add(
            StageTransition(
                account_id=account, stage=stage_name, entered_at=day(entered), exited_at=on(exited)
            )
        )


@pytest.fixture
def dataset(database_url: str) -> str:
    with Session(make_engine(database_url)) as session:
        # a: TTFV 10 d, activated, completed, churned 60 d after completion.
        customer(session, "a", 0, "high", "premium", "logistics", "completed",
                 signed=2, first_value=12, completed=40, churned=100,
                 adopt_tasks=(True, True), tickets=(3, 20, 45),
                 stays={"adopt": (15, 25), "review": (25, 35)})  # fmt: skip
        # b: TTFV 20 d, one required task open, completed, still a customer.
        customer(session, "b", 1, "high", "premium", "retail", "completed",
                 signed=1, first_value=21, completed=50,
                 adopt_tasks=(True, False), tickets=(100,),
                 stays={"adopt": (20, 40), "review": (40, 42)})  # fmt: skip
        # c: TTFV 30 d, activated (the open task is optional), stuck in review past lapsing.
        customer(session, "c", 5, "low", "basic", "logistics", "review",
                 signed=5, first_value=35, lapses=60,
                 adopt_tasks=(True, None), tickets=(6,),
                 stays={"adopt": (10, 16), "review": (16, None)})  # fmt: skip
        # d: never reached first value, cancelled in adopt.
        customer(session, "d", 10, "tech", "basic", "retail", "cancelled",
                 signed=10, cancelled=30, adopt_tasks=(False,),
                 stays={"adopt": (12, 30)})  # fmt: skip
        # h: never reached first value, closed as lapsed (silent past every allowance).
        customer(session, "h", 20, "tech", "basic", "health", "lapsed",
                 signed=20, lapses=60, lapsed=80, adopt_tasks=(False,),
                 stays={"adopt": (22, 80)})  # fmt: skip
        # e: just started, in kickoff, not yet lapsed; no checklist yet.
        customer(session, "e", 90, "low", "enterprise", "insurance", "kickoff",
                 signed=90, lapses=250, tickets=(91,))  # fmt: skip
        # g: TTFV 5 d, completed too late for the retention window; no adopt tasks.
        customer(session, "g", 95, "high", "premium", "logistics", "completed",
                 signed=95, first_value=100, completed=150, tickets=(96,))  # fmt: skip
        # outside the range: must count nowhere.
        customer(session, "old", -10, "high", "premium", "logistics", "completed",
                 signed=-10, first_value=-9, completed=-1, tickets=(-5,),
                 stays={"adopt": (-9, -8)})  # fmt: skip
        customer(session, "late", 100, "high", "premium", "logistics", "depart")
        session.commit()
    return database_url


def build(url: str) -> scorecard.Scorecard:
    with Session(make_engine(url)) as session:
        return scorecard.build(session, START, END, as_of=AS_OF, retention_days=90)


def test_every_figure_on_a_hand_built_cohort(dataset: str) -> None:
    card = build(dataset)
    f = card.overall
    assert f.onboardings == 7  # a b c d e g h; "old" started before, "late" at the (exclusive) end

    # TTFV (days): a 10, b 20, c 30, g 5 → sorted 5 10 20 30.
    assert f.time_to_first_value.count == 4
    assert f.time_to_first_value.median_days == pytest.approx((10 + 20) / 2)
    # p90, interpolated: rank (4 - 1) * 0.9 = 2.7 → 20 + 0.7 * (30 - 20).
    assert f.time_to_first_value.p90_days == pytest.approx(20 + 0.7 * 10)

    # Activation: a (2/2), c (1/1 required), g (no adopt tasks, reached first value) of 7.
    assert (f.activation.count, f.activation.of) == (3, 7)
    assert f.activation.rate == pytest.approx(3 / 7)

    # Completion: a b g completed, d cancelled, h closed as lapsed, c lapsed while still open
    # (day 60 < day 200); e not judged.
    c = f.completion
    assert (c.completed, c.cancelled, c.lapsed) == (3, 1, 2)
    assert c.rate == pytest.approx(3 / (3 + 1 + 2))

    # Retention after 90 days: a (40 + 90 = 130) and b (140) are due by day 200, g (240) not;
    # a churned on day 100, before its day 130.
    assert (f.retention.count, f.retention.of) == (1, 2)

    # Tickets in each customer's first 30 / 90 days (all seven are past both windows):
    # a 2 / 3 (days 3, 20 | 45), b 0 / 0 (day 100 is day 99 of b), c 1 / 1, d 0, e 1, g 1, h 0.
    thirty, ninety = f.support_tickets
    assert (thirty.days, thirty.tickets, thirty.customers) == (30, 2 + 0 + 1 + 0 + 1 + 1, 7)
    assert thirty.per_customer == pytest.approx(5 / 7)
    assert (ninety.days, ninety.tickets, ninety.customers) == (90, 3 + 0 + 1 + 0 + 1 + 1, 7)

    # Funnel: where they are now, who reached each stage, median days in it.
    funnel = f.funnel
    assert {stage: s.now for stage, s in funnel.items() if s.now} == {
        "completed": 3,
        "review": 1,
        "cancelled": 1,
        "lapsed": 1,
        "kickoff": 1,
    }
    assert funnel["adopt"].reached == 5 and funnel["completed"].reached == 3
    # Adopt stays that ended: a 10, b 20, c 6, d 18, h 58 → median 18.
    assert funnel["adopt"].median_days == pytest.approx(18)
    assert funnel["review"].median_days == pytest.approx((10 + 2) / 2)  # c has not left
    assert card.distributions.time_to_first_value_days == [5, 10, 20, 30]


def test_breakdowns_split_the_same_cohort(dataset: str) -> None:
    by = build(dataset).by
    assert set(by) == {"touch_model", "plan", "industry", "playbook"}
    high = by["touch_model"]["high"]  # a b g
    assert high.onboardings == 3
    assert high.time_to_first_value.median_days == pytest.approx(10)  # 5 10 20
    assert (high.activation.count, high.completion.rate) == (2, 1.0)
    low = by["touch_model"]["low"]  # c e: c lapsed, e not judged
    assert (low.completion.lapsed, low.completion.rate) == (1, 0.0)
    tech = by["touch_model"]["tech"].completion  # d cancelled, h lapsed
    assert (tech.cancelled, tech.lapsed, tech.rate) == (1, 1, 0.0)
    assert set(by["plan"]) == {"basic", "enterprise", "premium"}
    assert by["industry"]["retail"].onboardings == 2  # b d
    assert by["playbook"]["standard"].onboardings == 7


def test_an_empty_range_reports_no_figures_rather_than_zeroes(database_url: str) -> None:
    card = build(database_url)
    assert card.overall.onboardings == 0
    assert (
        card.overall.completion.rate is None and card.overall.time_to_first_value.p90_days is None
    )


def test_postgresql_computes_what_python_computes_on_a_random_cohort(database_url: str) -> None:
    """PostgreSQL tallies in SQL what any other database tallies in Python (reports/rows.py):
    on a random cohort, every cell's figures and the distributions are the same to the last
    bit. Times fall on whole and half days, so tickets on a window's last instant, churn on
    the retention's, lapse moments at `as_of` and completions right on the retention cut-off
    are all there; PostgreSQL's session time zone has a daylight-saving change inside the
    windows, which must not move them."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has only the Python tallies")
    rng = random.Random(11)

    def maybe(after: float) -> float | None:
        return rng.choice([None, after + rng.randrange(0, 240) / 2])

    with Session(make_engine(database_url)) as session:
        for n in range(300):
            start = rng.randrange(-10, 110)
            completed = rng.choice([None, AS_OF_DAY - 90, start + rng.randrange(1, 150)])
            entered = {stage: start + rng.randrange(0, 80) for stage in rng.sample(list(Stage), 4)}
            customer(
                session,
                f"c{n}",
                start,
                rng.choice(["high", "low", "tech"]),
                rng.choice(["basic", "premium"]),
                rng.choice(["retail", "health", "ïnsure"]),
                rng.choice(list(Stage)),
                signed=maybe(start),
                first_value=maybe(start),
                completed=completed,
                cancelled=maybe(start) if completed is None else None,
                lapsed=rng.choice([None, None, None, start + 60]),
                churned=rng.choice([None, completed and completed + 90, maybe(start)]),
                lapses=rng.choice([None, AS_OF_DAY, start + rng.randrange(0, 300)]),
                adopt_tasks=tuple(rng.choice([True, False, None]) for _ in range(rng.randrange(4))),
                tickets=tuple(
                    start + rng.choice([0, 30, 90, rng.randrange(-5, 120)])
                    for _ in range(rng.randrange(4))
                ),
                stays={
                    stage: (at, rng.choice([None, at + rng.randrange(0, 60) / 2]))
                    for stage, at in list(entered.items())[: rng.randrange(5)]
                },
            )
        session.commit()

    cohort = Cohort(start=START, end=END, as_of=AS_OF, retention=timedelta(days=90))
    with Session(make_engine(database_url)) as session:
        # Python reads UTC: two datetimes in one zone subtract as wall-clock times.
        session.execute(text("SET TIME ZONE 'UTC'"))
        in_python = rows.tallies(session, cohort, DIMENSIONS)
    with Session(make_engine(database_url)) as session:
        session.execute(text("SET TIME ZONE 'America/New_York'"))
        in_sql = postgres.tallies(session, cohort, DIMENSIONS)
    assert sorted(in_sql) == sorted(in_python) and len(in_sql) == 3 * 2 * 3
    for cell, tally in in_python.items():
        assert in_sql[cell].figures() == tally.figures(), cell
    overall = Tally.total(in_python.values())
    assert Tally.total(in_sql.values()).distributions() == overall.distributions()
    assert overall.onboardings > 200 and overall.lapsed and overall.retention_due
    assert overall.tickets[30] and overall.retained < overall.retention_due


# --- starter.py report -------------------------------------------------------------------------


def report(url: str, *args: str, columns: int = 220) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": url, "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "starter.py", "report", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


RANGE = ["--from", START.date().isoformat(), "--to", END.isoformat(), "--as-of", AS_OF.isoformat()]


def test_report_prints_exports_json_and_writes_a_page_with_charts(
    dataset: str, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    result = report(dataset, *RANGE, "--json", "--html", str(page))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["overall"]["completion"]["rate"] == pytest.approx(0.5)
    assert data["by"]["touch_model"]["high"]["onboardings"] == 3

    page_html = page.read_text()
    assert "<script src=" not in page_html  # self-contained: plotly.js is inlined
    assert "Plotly.newPlot" in page_html and page_html.count("Plotly.newPlot") == 3
    assert "Time to first value (days" in page_html and "Funnel" in page_html
    assert "By touch model" in page_html
    # The median's label left of its line, the p90's right of it: apart however close.
    assert '"text":"median 15.0","x":15.0,"xanchor":"right"' in page_html
    assert '"text":"p90 27.0","x":27.0,"xanchor":"left"' in page_html
    assert page_html.count('"exponentformat":"none"') == 4  # no "140μ" on an axis

    text = report(dataset, *RANGE, "--by", "plan", columns=80)
    assert text.returncode == 0, text.stderr
    assert "by plan" in text.stdout and "by industry" not in text.stdout
    assert "3 of 6: 1 cancelled, 2 lapsed" in text.stdout  # completion, overall
    assert "15.0 d" in text.stdout  # TTFV median
    # A terminal of 80 columns holds it: no line wider, no figure broken over two lines.
    assert max(map(len, text.stdout.splitlines())) <= 80
    assert re.search(r"completion\s+50%\s+3 of 6", text.stdout)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--from", "2026-13-01"], "--from"),
        (["--from", "2026-06-01", "--to", "2026-05-01"], "--from"),
        (["--to", "2026-05-01T10:00"], "--to"),
        (["--by", "region"], "--by"),
        (["--retention-days", "0"], "--retention-days"),
        (["--html", "/nonexistent/dir/r.html"], "--html"),
    ],
)
def test_report_refuses_bad_options_naming_them(
    sqlite_url: str, args: list[str], named: str
) -> None:
    result = report(sqlite_url, *args)
    assert result.returncode == 2
    assert named in result.stderr


def test_the_charts_read_in_the_unit_of_the_cohort_and_their_labels_apart() -> None:
    assert html.unit_for([3.0, 40.0]) == ("days", 1.0)
    assert html.unit_for([0.02, 0.5]) == ("hours", 24.0)  # a demo: hours, not 0.5 days
    assert html.unit_for([0.0001], [0.002]) == ("minutes", 1440.0)  # never "140μ" days
    assert html.unit_for([], []) == ("minutes", 1440.0)
