"""How long `starter.py report` takes on a large database (a benchmark, not a test).

    .venv/bin/python benchmarks/scorecard.py [--onboardings 20000] [--database-url URL]
        [--reuse] [--repeat N] [--queries] [--cli]

Fills an empty database (default: a temporary SQLite file) with a year of synthetic
onboardings — six stage transitions, five Adopt tasks and a few support tickets each — then
times the scorecard over it, with all four breakdowns. PostgreSQL is filled with COPY and
analysed afterwards, as autovacuum would. `--reuse` times a database an earlier run filled
with as many onboardings; `--queries` prints each statement's time; `--cli` also times
`starter.py report` (tables, then --json, then --html) over the database, as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, event, func, insert, select, text  # noqa: E402
from sqlmodel import Session, SQLModel  # noqa: E402

from infra.db import make_engine, migrate  # noqa: E402
from models.tables import Onboarding, StageTransition, SupportTicket, Task  # noqa: E402
from reports import scorecard  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = T0 + timedelta(days=366)
AS_OF = T0 + timedelta(days=500)
STAGES = ["depart", "handoff", "kickoff", "adopt", "review", "expand"]
Rows = dict[type[SQLModel], list[dict[str, Any]]]


def synthetic(count: int) -> Rows:
    rng = random.Random(7)
    onboardings, transitions, tasks, tickets = [], [], [], []
    for n in range(count):
        account = f"acct-{n:06}"
        start = T0 + timedelta(minutes=rng.randrange(365 * 24 * 60))
        days = [rng.uniform(0.5, 20) for _ in STAGES]
        done = rng.random() < 0.7
        at = start
        for stage, spent in zip(STAGES, days, strict=True):
            transitions.append(
                {
                    "account_id": account,
                    "stage": stage,
                    "entered_at": at,
                    "exited_at": at + timedelta(days=spent),
                }  # fmt: skip
            )
            at += timedelta(days=spent)
        onboardings.append(
            {
                "account_id": account,
                "workflow_id": f"onboarding-{account}",
                "account_name": account,
                "plan": rng.choice(["basic", "premium", "enterprise"]),
                "touch_model": rng.choice(["high", "low", "tech"]),
                "industry": rng.choice(["retail", "logistics", "insurance", "health"]),
                "use_case": "x",
                "contract_value": 1000.0,
                "playbook": "standard",
                "account_executive_id": "ae-001",
                "champion_email": "c@example.com",
                "handoff_notes": [],
                "stage": "completed" if done else "adopt",
                "started_at": start,
                "contract_signed_at": start,
                "first_value_at": start + timedelta(days=sum(days[:4])),
                "completed_at": at if done else None,
                "lapses_at": start + timedelta(days=90),
            }  # fmt: skip
        )
        for t in range(5):
            tasks.append(
                {
                    "account_id": account,
                    "task_id": f"t{t}",
                    "stage": "adopt",
                    "title": "t",
                    "owner": "customer",
                    "required": True,
                    "due_at": start,
                    "done_at": start if rng.random() < 0.8 else None,
                }  # fmt: skip
            )
        for k in range(rng.randrange(4)):
            tickets.append(
                {
                    "account_id": account,
                    "ticket": f"T-{k}",
                    "opened_at": start + timedelta(days=rng.uniform(0, 120)),
                }  # fmt: skip
            )
    # Parents first: PostgreSQL checks the foreign keys row by row.
    return {
        Onboarding: onboardings,
        StageTransition: transitions,
        Task: tasks,
        SupportTicket: tickets,
    }


def fill(engine: Engine, count: int) -> None:
    migrate(engine)
    rows = synthetic(count)
    with engine.begin() as connection:
        if engine.dialect.name != "postgresql":
            for table, values in rows.items():
                connection.execute(insert(table), values)
            return
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        for table, values in rows.items():
            columns = list(values[0])
            with cursor.copy(
                f"COPY {table.__tablename__} ({', '.join(columns)}) FROM STDIN"
            ) as copy:
                for row in values:
                    copy.write_row(
                        [json.dumps(v) if isinstance(v, list) else v for v in row.values()]
                    )
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def filled(engine: Engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(Onboarding)).scalar_one()


@contextmanager
def statement_times(engine: Engine, show: bool) -> Iterator[None]:
    """With `show`, print each statement's time, named by the tables it reads: on PostgreSQL
    from sending it until its rows are in; SQLite hands rows over as they are read, so there
    only its start."""
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        tables = dict.fromkeys(re.findall(r"\bFROM (\w+)|\bJOIN (\w+)", statement))
        named = ", ".join(dict.fromkeys(a or b for a, b in tables))
        rows = f"{cursor.rowcount:>6} rows" if cursor.rowcount >= 0 else ""
        print(f"  {time.perf_counter() - started.pop():6.2f} s  {rows:>11}  {named}")

    if show:
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        if show:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)


def time_cli(url: str, folder: str) -> None:
    span = ["--from", T0.date().isoformat(), "--to", END.date().isoformat()]
    for extra in ([], ["--json"], ["--html", f"{folder}/report.html"]):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "starter.py", "report", *span, "--as-of", AS_OF.isoformat(), *extra],
            cwd=ROOT,
            env=os.environ | {"DATABASE_URL": url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if result.returncode:
            sys.exit(f"starter.py report {' '.join(extra)} failed:\n{result.stderr}")
        print(f"starter.py report {' '.join(extra[:1])}: {time.perf_counter() - started:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onboardings", type=int, default=20000)
    parser.add_argument("--database-url", help="an empty database (default: temporary SQLite)")
    parser.add_argument("--reuse", action="store_true", help="the database is filled already")
    parser.add_argument("--repeat", type=int, default=1, help="time the scorecard N times")
    parser.add_argument("--queries", action="store_true", help="print each statement's time")
    parser.add_argument("--cli", action="store_true", help="also time starter.py report")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        engine = make_engine(url)
        started = time.perf_counter()
        if not args.reuse:
            fill(engine, args.onboardings)
            print(
                f"{args.onboardings} onboardings: filled in {time.perf_counter() - started:.1f} s"
            )
        elif (found := filled(engine)) != args.onboardings:
            parser.error(f"--reuse: the database holds {found} onboardings, not {args.onboardings}")
        load = " ".join(f"{n:.1f}" for n in os.getloadavg())
        print(f"{engine.dialect.name}, {os.cpu_count()} cores, load average {load}")
        for _ in range(args.repeat):
            with statement_times(engine, args.queries), Session(engine) as session:
                started = time.perf_counter()
                card = scorecard.build(session, T0, END, as_of=AS_OF)
            print(
                f"scorecard in {time.perf_counter() - started:.2f} s "
                f"({card.overall.onboardings} in the cohort, all four breakdowns)"
            )
        if args.cli:
            time_cli(url, folder)


if __name__ == "__main__":
    main()
