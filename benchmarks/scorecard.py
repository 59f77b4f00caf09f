"""How long `starter.py report` takes on a large database (a benchmark, not a test).

    .venv/bin/python benchmarks/scorecard.py [--onboardings 20000] [--database-url URL]

Fills an empty database (default: a temporary SQLite file) with a year of synthetic
onboardings — six stage transitions, five Adopt tasks and a few support tickets each — then
times the scorecard over it, with all four breakdowns.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402
from sqlmodel import Session  # noqa: E402

from infra.db import make_engine, migrate  # noqa: E402
from models.tables import Onboarding, StageTransition, SupportTicket, Task  # noqa: E402
from reports import scorecard  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STAGES = ["depart", "handoff", "kickoff", "adopt", "review", "expand"]


def fill(url: str, count: int) -> None:
    rng = random.Random(7)
    engine = make_engine(url)
    migrate(engine)
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
    with engine.begin() as connection:
        for table, rows in (
            (Onboarding, onboardings),
            (StageTransition, transitions),
            (Task, tasks),
            (SupportTicket, tickets),
        ):
            connection.execute(insert(table), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onboardings", type=int, default=20000)
    parser.add_argument("--database-url", help="an empty database (default: temporary SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        started = time.perf_counter()
        fill(url, args.onboardings)
        filled = time.perf_counter()
        with Session(make_engine(url)) as session:
            card = scorecard.build(
                session, T0, T0 + timedelta(days=366), as_of=T0 + timedelta(days=500)
            )
        done = time.perf_counter()
    print(
        f"{args.onboardings} onboardings: filled in {filled - started:.1f} s, "
        f"scorecard in {done - filled:.2f} s ({card.overall.onboardings} in the cohort)"
    )


if __name__ == "__main__":
    main()
