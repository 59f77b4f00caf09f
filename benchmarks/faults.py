"""A fault-injection run: many onboardings at once while the stack is broken on purpose.

    .venv/bin/python benchmarks/faults.py [--journeys 200] [--seed N] [--window SECONDS]
        [--json PATH] [--keep] [--postgres URL]        (or: make faults FAULTS_ARGS="...")

Starts its own Temporal dev server (persisted to a SQLite file in a temporary folder), a fresh
PostgreSQL database `faults_<pid>` as the app database (migrated with Alembic, dropped at the
end), a loopback SMTP server that records every delivery, and two `worker.py` processes. It
starts the journeys with `starter.py start --from-csv` (low-touch deals on the standard
playbook: every stage waits for its milestone), then sends each journey's four milestone
signals at random moments across the window, as the sales system and CSMs would (a milestone
sent early is applied when its stage is reached). Meanwhile it

- SIGKILLs a worker at random moments (6 times) and starts it again;
- kills the SMTP server for 30 s, then starts it again on the same port;
- drops the app database's connections (3 times);
- restarts the Temporal dev server on its persisted state (once).

Then it waits until every onboarding has ended and reports: journeys completed, deliveries
per business key with every duplicate listed and its likely cause, signals sent vs applied
(the milestones the workflows recorded), incidents (the `status` answer's `incidents`, where
the code has them), wall time. `--json PATH` writes the figures as JSON. Everything it
started is stopped on the way out, on Ctrl-C and on failure too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faults_inject import FaultPlan, Injector  # noqa: E402
from faults_journeys import Journeys  # noqa: E402
from faults_report import (  # noqa: E402
    activity_failures,
    mail_summary,
    marked_sent,
    read_deliveries,
)
from faults_stack import (  # noqa: E402
    ROOT,
    AppDatabase,
    DevServer,
    Process,
    SmtpServer,
    StackError,
    WorkerSlot,
)
from runs import exit_with, in_scratch, warn  # noqa: E402
from sqlalchemy import text  # noqa: E402

from infra.db import make_engine  # noqa: E402

WORKERS = 2
# After the last signal, how long the onboardings may take to finish (killed attempts wait
# out their start-to-close timeout before they are retried).
SETTLE_SECONDS = 900.0
CHILDREN: list[Process] = []  # for the last-resort cleanup in main()


def app_env(
    temporal: DevServer, smtp: SmtpServer, database_url: str, folder: Path
) -> dict[str, str]:
    """The workers' and the CLI's environment: this run's Temporal, database and mail."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "SMTP_"))}
    env.update(
        TEMPORAL_ADDRESS=temporal.address,
        DATABASE_URL=database_url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_TLS="none",  # a relay on loopback
        OUTBOX_DIR=str(folder / "outbox"),  # unused with SMTP; kept out of the project's .data
        CHAT_URLS="[]",
        METRICS_PORT="0",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        COLUMNS="200",
    )
    return env


async def migrate(env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alembic",
        "upgrade",
        "head",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise StackError(f"alembic upgrade head exited {process.returncode}: {out.decode()}")


def outbox(database_url: str) -> dict[str, str]:
    """The notification table's email rows: key → status."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT key, status FROM notification WHERE channel = 'email'")
            ).all()
    finally:
        engine.dispose()
    return {str(key): str(status) for key, status in rows}


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    started = time.time()
    rng = random.Random(args.seed)
    database = AppDatabase(args.postgres)
    temporal, smtp = DevServer(folder), SmtpServer(folder)
    CHILDREN.extend([temporal, smtp])
    async with AsyncExitStack() as stack:
        await asyncio.to_thread(database.create)
        stack.callback(database.drop)
        warn(f"database {database.name}, Temporal on {temporal.address}, SMTP on :{smtp.port}")
        stack.push_async_callback(temporal.stop)
        await temporal.start()
        stack.push_async_callback(smtp.stop)
        await smtp.start()
        env = app_env(temporal, smtp, database.url, folder)
        await migrate(env)
        workers = [WorkerSlot(f"w{n}", folder, env) for n in range(1, WORKERS + 1)]
        CHILDREN.extend(workers)
        for worker in workers:
            stack.push_async_callback(worker.stop)
            await worker.start()
        warn(f"{WORKERS} workers polling; starting {args.journeys} onboardings")

        journeys = Journeys(args.journeys, rng, folder, env, temporal.address)
        await journeys.start_all()
        t0 = time.time()
        injector = Injector(
            FaultPlan.draw(rng, args.window), rng, temporal, smtp, database, workers
        )
        faults = asyncio.create_task(injector.run(t0))
        try:
            await journeys.signal_all(t0, args.window)
            await faults
        finally:
            faults.cancel()  # on failure: no fault may restart what is being stopped
        await journeys.wait_until_ended(SETTLE_SECONDS)
        outcomes = await journeys.outcomes(t0)

        for worker in workers:
            await worker.stop()  # settled: nothing may touch the outbox while it is read
        mail = mail_summary(
            read_deliveries(smtp.deliveries),
            marked_sent(folder),
            injector.events,
            t0,
            await asyncio.to_thread(outbox, database.url),
        )
    return {
        "journeys_started": journeys.started,
        **outcomes,
        "mail": mail,
        "faults": injector.summary(t0),
        "activity_failures": activity_failures(folder),
        "seed": args.seed,
        "window_seconds": args.window,
        "wall_seconds": round(time.time() - started, 1),
    }


def print_report(report: dict[str, Any]) -> None:
    mail, signals = report["mail"], report["signals"]
    faults = report["faults"]
    print()
    print(f"journeys completed       {report['completed']} / {report['journeys_started']}")
    if report["not_completed"]:
        shown = ", ".join(f"{a} ({why})" for a, why in report["not_completed"].items())
        print(f"  not completed          {shown}")
    print(
        f"signals sent / applied   {signals['sent']} / {signals['applied']}"
        f"  (lost: {len(signals['lost'])}, not sent: {len(signals['failed'])}, "
        f"errors retried by the run: {signals['rpc_retries']})"
    )
    for lost in signals["lost"]:
        print(f"  lost                   {lost}")
    print(f"incidents                {report['incidents']}")
    print(
        f"deliveries               {mail['deliveries']} of {mail['keys_delivered']} keys; "
        f"{mail['duplicate_keys']} keys delivered more than once, "
        f"{mail['extra_deliveries']} extra deliveries"
    )
    for kind, count in mail["extra_by_cause"].items():
        print(f"  {count:>4} × {kind}")
    print(
        f"never delivered          {len(mail['marked_sent_never_delivered'])} marked sent, "
        f"{len(mail['not_sent_at_end'])} not sent at the end (of {mail['outbox_rows']} rows)"
    )
    print(
        f"faults                   {len(faults['worker_kills'])} worker kills, SMTP down "
        f"{faults['smtp_outage_seconds']} s, {len(faults['db_drops'])} database drops "
        f"({sum(d['connections'] for d in faults['db_drops'])} connections), "
        f"Temporal restarted {len(faults['temporal_restarts'])}x, "
        f"{len(faults['worker_exits'])} unplanned worker exits"
    )
    failures = report["activity_failures"]
    print(f"activity attempts failed {sum(failures.values())}")
    for error, count in list(failures.items())[:5]:
        print(f"  {count:>4} × {error}")
    print(
        f"wall time                {report['wall_seconds']:.0f} s (seed {report['seed']}); "
        f"signals and faults over {report['window_seconds']:.0f} s, the last onboarding "
        f"ended at {report['last_ended_at_seconds']} s"
    )
    if mail["duplicates"]:
        print("\nduplicate deliveries (key, count, when and by which worker, likely cause):")
        for dup in mail["duplicates"]:
            when = ", ".join(f"{d['at_seconds']} s by {d['worker']}" for d in dup["deliveries"])
            print(f"  {dup['key']}  ×{dup['count']}  ({when})")
            for cause in dup["causes"]:
                print(f"      {cause['kind']}: {cause['detail']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--journeys", type=int, default=200, help="onboardings run at once")
    parser.add_argument("--seed", type=int, default=None, help="for the same plan of faults")
    parser.add_argument(
        "--window",
        type=float,
        default=180.0,
        help="seconds over which signals and faults are spread (at least 100)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL database to connect to as an owner, to create the run's database",
    )
    args = parser.parse_args()
    if args.journeys < 1:
        parser.error("--journeys must be at least 1")
    if args.window < 100:
        parser.error("--window must be at least 100 seconds (11 faults, a 30 s mail outage)")
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")  # to stderr
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    report = in_scratch(
        partial(run, args),
        prefix="faults-",
        keep=args.keep,
        children=CHILDREN,
        errors=(StackError,),
        note=f"seed {args.seed}; logs in {{folder}}",
    )
    if report is None:
        return 1
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    ok = report["completed"] == report["journeys_started"] and not report["signals"]["lost"]
    return 0 if ok else 2


if __name__ == "__main__":
    exit_with(main)
