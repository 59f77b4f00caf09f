"""The signed intake under load, against the CLI that started the same deals before it (a
benchmark; issue 14).

    .venv/bin/python benchmarks/intake.py [--deliveries N] [--concurrency C] [--sample S]
        [--seed SEED] [--json PATH] [--keep]   (or: make bench-intake BENCH_INTAKE_ARGS="...")

Starts its own Temporal dev server (as benchmarks/journeys.py does), `worker.py` on a scratch
SQLite database and `api_server.py` on a free loopback port, with a webhook secret and a rate
limit that does not throttle; then

1. **the API** (intake_api.py): N signed `POST /v1/deals` (intake_plan.py): distinct deals
   built from examples/deal-acme.json (`bench-0001`...), 20 % re-deliveries of one of them
   (the same bytes, as a CRM retries) and 5 % forged (a wrong secret or a tampered body),
   shuffled with the seed and sent over C connections of one httpx client. Every forged
   delivery must get 401 and start nothing; every distinct deal one 202 and 200 for its
   re-deliveries, whichever won the race; Temporal must hold exactly one run per distinct
   deal. Anything else fails the run. And S new deals sent one at a time (`seq-0001`...).
2. **the CLI** (intake_cli.py): the same number of distinct deals (`cli-0001`...) with one
   `starter.py start --from-csv --concurrency C`, and S with `start --from-file` one at a time.

Each CLI measurement runs between the two halves of its API counterpart (A B A), so a load
that drifts meanwhile (the machine is shared) weighs on both sides alike.

Prints figure | API | CLI | ratio (API / CLI: the machine's speed cancels out, a shared
machine's noise mostly), latencies p50/p99/max of the 202s, 200s and 401s, the API's own time
per request from its access log (the rest of a latency is the connection and the wait for its
event loop), CPU from /proc (the API's per request; how busy the API, the Temporal server and
the worker were during each batch, in cores), and the load average; `--json PATH` writes the
figures. The CLI's times include its start-up (the interpreter, imports, connecting), as a
sales system calling it pays them. Each phase starts once the worker is idle again. On the dev
server's SQLite file both batches wait mostly on Temporal's writes (a start is a transaction),
so read their rates as "the API keeps up with the engine", not as the API's own ceiling.
Every process it starts is stopped on the way out, on Ctrl-C and SIGTERM too; `--keep` keeps
the folder (logs, outbox).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faults_stack import DevServer, Process, StackError  # noqa: E402
from intake_api import ApiBatch, expect_started, pid, sequential, serve_api  # noqa: E402
from intake_cli import bulk_start, single_starts, warm_up  # noqa: E402
from intake_plan import deals, plan, spread  # noqa: E402
from journey_cost import BenchmarkError  # noqa: E402
from journeys_measure import Figure, render_table, wait_quiet  # noqa: E402
from journeys_project import project_env, start_worker  # noqa: E402
from journeys_wave import copy_playbooks  # noqa: E402
from runs import exit_with, in_scratch, load, warn  # noqa: E402
from temporalio.client import Client  # noqa: E402

CHILDREN: list[Process] = []  # for the last-resort clean-up in main()


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    began = time.monotonic()
    report: dict[str, Any] = {"cpus": os.cpu_count(), "load_at_start": load()}
    server = DevServer(folder)
    CHILDREN.append(server)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(server.stop)
        await server.start()
        # The children run with the bytecode cache, as on a developer's machine or in the image.
        env = project_env(server.address, folder)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        copy_playbooks(folder)
        worker = await start_worker(env, folder)
        CHILDREN.append(worker)
        stack.push_async_callback(worker.stop)
        api = Process("api", folder / "api.log")
        CHILDREN.append(api)
        stack.push_async_callback(api.stop)
        url = await serve_api(api, env)
        client = await Client.connect(server.address)
        warn(f"dev server {server.address}, API {url}; logs in {folder}")
        # Warm-ups, not counted: the API's lazy imports, the CLI's bytecode cache.
        await sequential(url, deals("warm-api", 1))
        await warm_up(env, folder)
        idle = partial(wait_quiet, pid(worker))  # each part starts on an idle worker
        assert server.popen is not None
        others = {"server": server.popen.pid, "worker": pid(worker)}
        # API, CLI, API: a load that drifts meanwhile weighs on both sides alike.
        batch = ApiBatch(url, api, plan(args.deliveries, args.seed), args.concurrency, others)
        half = args.deliveries // 2
        await idle()
        await batch.send(slice(0, half))
        await idle()
        distinct = len(batch.plan.valid)
        report["cli"] = await bulk_start(env, folder, distinct, args.concurrency, others)
        await idle()
        await batch.send(slice(half, None))
        report["api"] = await batch.figures(client)
        warn(f"{args.deliveries} deliveries checked at {time.monotonic() - began:.0f} s")
        alone = deals("seq", args.sample)
        await idle()
        latencies = await sequential(url, alone[: args.sample // 2])
        await idle()
        report["cli"] |= await single_starts(env, folder, "one", args.sample)
        await idle()
        latencies += await sequential(url, alone[args.sample // 2 :])
        report["api"] |= spread(latencies, "seq_202")
        for prefix, count in (("seq", args.sample), ("cli", distinct), ("one", args.sample)):
            await expect_started(client, prefix, count)
    return report | {
        "deliveries": args.deliveries,
        "concurrency": args.concurrency,
        "sample": args.sample,
        "seed": args.seed,
        "load_at_end": load(),
        "wall_seconds": round(time.monotonic() - began, 1),
    }


# label, unit, the API's figure, the CLI's (None: no counterpart), decimals
ROWS: list[tuple[str, str, str | None, str | None, int]] = [
    ("starts/s: API requests | --from-csv deals", "", "requests_per_s", "csv_deals_per_s", 1),
    ("starts/s: API new deals | --from-csv deals", "", "new_per_s", "csv_deals_per_s", 1),
    ("p50: API new deal, batch | one --from-file", "ms", "api_202_p50_ms", "single_p50_ms", 0),
    ("p50: API new deal, alone | one --from-file", "ms", "seq_202_p50_ms", "single_p50_ms", 0),
    ("CPU: API per request | --from-csv per deal", "ms", "cpu_ms_per_request", "csv_cpu_ms", 1),
    ("Temporal server busy in the batch", "cores", "server_cores", "csv_server_cores", 2),
    ("worker busy in the batch", "cores", "worker_cores", "csv_worker_cores", 2),
    ("API process busy in the batch", "cores", "api_cores", None, 2),
    *[
        (f"{status} {what} {p}", "ms", f"api_{status}_{p}_ms", None, 0)
        for status, what in (("202", "new deal"), ("200", "re-delivery"), ("401", "forged"))
        for p in ("p50", "p99", "max")
    ],
    ("202 p50 inside the API (its access log)", "ms", "own_202_p50_ms", None, 0),
    ("200 p50 inside the API (its access log)", "ms", "own_200_p50_ms", None, 0),
    ("one --from-file: max", "ms", None, "single_max_ms", 0),
    ("one --from-file: CPU", "ms", None, "single_cpu_ms", 0),
    ("--from-csv: wall", "s", None, "csv_seconds", 1),
]


def figures(report: dict[str, Any]) -> list[Figure]:
    api, cli = report["api"], report["cli"]
    return [
        Figure(label, unit, api.get(a) if a else None, cli.get(c) if c else None, decimals)
        for label, unit, a, c, decimals in ROWS
    ]


def print_report(report: dict[str, Any], rows: list[Figure]) -> None:
    lines = render_table(rows).splitlines()
    # render_table heads its columns project | floor; here they are API | CLI (same widths).
    lines[0] = lines[0].replace("project", "API".rjust(7)).replace("floor", "CLI".rjust(5))
    print("\n".join(lines))
    api = report["api"]
    print(
        f"\n{report['deliveries']} deliveries in {api['batch_seconds']:.1f} s, "
        f"{report['concurrency']} at once: {api['distinct']} distinct deals started once each, "
        f"{api['retries']} re-deliveries answered 200,\n{api['forged']} forged answered 401 and "
        f"started nothing (checked in Temporal); seed {report['seed']}. Ratio = API / CLI; the "
        f"CLI's times include its start-up;\n'alone' and 'one --from-file': {report['sample']} "
        "deals one after another; 'busy': CPU over the batch's wall time."
    )
    print(
        f"{report['cpus']} CPUs, load average {report['load_at_start']} at the start, "
        f"{report['load_at_end']} at the end; {report['wall_seconds']:.0f} s in all"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deliveries", type=int, default=1000, help="signed POSTs in the batch")
    parser.add_argument("--concurrency", type=int, default=20, help="connections (and CLI's)")
    parser.add_argument("--sample", type=int, default=20, help="deals started one at a time")
    parser.add_argument("--seed", type=int, default=14, help="the order of the deliveries")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    if args.deliveries < 4:
        parser.error("--deliveries must be at least 4")
    if not 1 <= args.concurrency <= 64:
        parser.error("--concurrency must be 1 to 64 (as starter.py start takes it)")
    if args.sample < 1:
        parser.error("--sample must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")  # to stderr
    report = in_scratch(
        partial(run, args),
        prefix="intake-",
        keep=args.keep,
        children=CHILDREN,
        errors=(StackError, BenchmarkError, TimeoutError),
    )
    if report is None:
        return 1
    rows = figures(report)
    print_report(report, rows)
    if args.json:
        report["figures"] = [row.as_json() for row in rows]
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    exit_with(main)
