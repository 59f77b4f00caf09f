"""Journeys against the engine's floor: what the project costs, measured beside the least the
same Temporal server and SDK can do, in one run (a benchmark).

    .venv/bin/python benchmarks/journeys.py [--journeys J] [--open K] [--floor N]
        [--sample S] [--wave W] [--json PATH] [--keep]   (or: make bench BENCH_ARGS="...")

Starts its own Temporal dev server (the `temporal` binary beside this Python, headless, on a
SQLite file in a temporary folder; the search attributes registered as the worker does), then

1. **the floor**: a worker inside this process runs N trivial workflows (one no-op activity)
   started at once → workflows/s, CPU per workflow, its history; then K workflows that run the
   activity and wait → starts/s, time until all have run it, RSS per open workflow, and the
   latency of a trivial update and query over S sequential calls while they are open;
2. **the project**, through its public contract only: `worker.py` as a subprocess (temporary
   SQLite database migrated with Alembic, file outbox, no metrics port, no encryption keys);
   J low-touch deals started with `starter.py start --from-csv` and walked to `completed` with
   the four milestone signals → journeys/s, CPU per journey (worker and server, from /proc),
   history per touch model (one journey each of high, tech and community besides);
3. with K onboardings bulk-started and held open: starts/s, time until every one waits in its
   first stage with its first mail in the outbox (and until the worker is idle), worker RSS
   per open onboarding, `status` query and `complete_milestone` update p50/p99 over S calls;
4. with those K still open, a wave of W reminders falling due together (journeys_wave.py):
   how late they are sent (p50, p99, max, and how many more than a minute late).

Prints figure | project | floor | ratio (project / floor: the machine's speed cancels out),
the load average, and with `--json PATH` writes the figures. Rates compare from the server's
start and close times (the CLI's own start-up is not in the starts/s); settle times count from
the moment the batch is started. CPU of the floor's "worker" is this whole process (its client
calls included), so the floor is, if anything, a little dear. Every process it starts is
stopped on the way out, on Ctrl-C and SIGTERM too; `--keep` keeps the folder (logs, outbox).
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
from journey_cost import BenchmarkError  # noqa: E402
from journeys_floor import measure_floor  # noqa: E402
from journeys_measure import Figure, render_table  # noqa: E402
from journeys_project import Project, project_env, start_worker  # noqa: E402
from journeys_wave import copy_playbooks  # noqa: E402
from runs import exit_with, in_scratch, load, warn  # noqa: E402
from temporalio.client import Client  # noqa: E402

from infra.search_attributes import register_search_attributes  # noqa: E402
from infra.settings import connect_temporal  # noqa: E402

# As many starts in flight as the project's bulk start is given (faults_journeys: 16).
CONCURRENCY = 16
CHILDREN: list[Process] = []  # for the last-resort clean-up in main()


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    began = time.monotonic()
    report: dict[str, Any] = {"cpus": os.cpu_count(), "load_at_start": load()}
    server = DevServer(folder)
    CHILDREN.append(server)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(server.stop)
        await server.start()
        assert server.popen is not None
        server_pid = server.popen.pid
        warn(f"Temporal dev server on {server.address}; floor: {args.floor} + {args.open} runs")
        floor_client = await Client.connect(server.address)
        await register_search_attributes(floor_client)
        report["floor"] = await measure_floor(
            floor_client, server_pid, args.floor, args.open, args.sample, CONCURRENCY
        )
        warn(f"floor done at {time.monotonic() - began:.0f} s; starting worker.py")

        env = project_env(server.address, folder)
        copy_playbooks(folder)
        for name in [n for n in os.environ if n.startswith(("TEMPORAL_", "ENCRYPTION_"))]:
            del os.environ[name]
        os.environ.update(env)  # this process's client connects as the CLI does
        worker = await start_worker(env, folder)
        CHILDREN.append(worker)
        stack.push_async_callback(worker.stop)
        client = await connect_temporal()
        project = Project(client, env, folder, worker, server_pid)
        report["project"] = await project.journeys(args.journeys, CONCURRENCY)
        warn(f"{args.journeys} journeys done at {time.monotonic() - began:.0f} s")
        report["project"]["history"] = await project.touch_models()
        report["project"] |= await project.open_batch(args.open, args.sample)
        warn(f"{args.open} open onboardings measured at {time.monotonic() - began:.0f} s")
        if args.wave:
            settle_per_s = args.open / report["project"]["settle_s"]
            report["project"] |= await project.wave(args.wave, settle_per_s)
            warn(f"a wave of {args.wave} reminders measured at {time.monotonic() - began:.0f} s")
    report |= {
        "journeys": args.journeys,
        "open": args.open,
        "floor_workflows": args.floor,
        "sample": args.sample,
        "wave": args.wave,
        "load_at_end": load(),
        "wall_seconds": round(time.monotonic() - began, 1),
    }
    return report


def figures(report: dict[str, Any]) -> list[Figure]:
    project, floor, k = report["project"], report["floor"], report["open"]

    def both(key: str) -> tuple[float, float]:
        return project[key], floor[key]

    def total(p: dict[str, float]) -> float:
        return p["cpu_worker_ms"] + p["cpu_server_ms"]

    rows = [
        Figure("journeys/s (floor: workflows/s)", "", *both("throughput_per_s"), 2),
        Figure("CPU per journey, worker", "ms", *both("cpu_worker_ms"), 0),
        Figure("CPU per journey, server", "ms", *both("cpu_server_ms"), 0),
        Figure("CPU per journey, total", "ms", total(project), total(floor), 0),
    ]
    histories = project["history"] | {"low, milestones at once": project["history_at_once"]}
    for touch_model, history in histories.items():
        for heading, value in history.items():
            rows.append(
                Figure(f"{heading} per journey, {touch_model}", "", value, floor[heading], 0)
            )
    rows += [
        Figure("bulk starts/s", "", *both("starts_per_s"), 1),
        Figure(f"settle after {k} starts", "s", *both("settle_s"), 1),
        Figure(f"worker idle after {k} starts", "s", project["quiet_s"], None, 1),
        Figure("CPU per start + settle, worker + server", "ms", *both("open_cpu_ms"), 0),
        Figure(f"worker RSS, {k} open", "MiB", *both("rss_mib"), 0),
        Figure("worker RSS per open", "KiB", *both("rss_per_open_kib"), 1),
    ]
    for call, name in (("update", "complete_milestone"), ("query", "status")):
        for p in ("p50", "p99"):
            rows.append(Figure(f"{name} {p}, {k} open", "ms", *both(f"{call}_{p}_ms"), 0))
        failed = project[f"{call}_failed"]
        rows.append(Figure(f"{name} calls failed, of {report['sample']}", "", failed, None, 0))
    if report["wave"]:
        w, due = report["wave"], project["wave_due_within_s"]
        for p in ("p50", "p99", "max"):
            label = f"reminder lateness {p}, {w} due within {due:.0f} s, {k} open"
            rows.append(Figure(label, "s", project[f"wave_late_{p}_s"], None, 1))
        label = f"reminders more than 60 s late, of {w}"
        rows.append(Figure(label, "", project["wave_late_over_60s"], None, 0))
    return rows


def print_report(report: dict[str, Any], rows: list[Figure]) -> None:
    print(render_table(rows))
    threads = report["project"]["cpu_worker_threads_ms"]
    print(
        "\nworker CPU per journey by thread: "
        f"{threads.get('main', 0)} ms main (event loop: workflow activations, sandbox), "
        f"{threads.get('core', 0)} ms SDK core (tokio), "
        f"{threads.get('other', 0)} ms other (activity threads)"
    )
    print(
        f"{report['journeys']} journeys, {report['open']} open, floor {report['floor_workflows']}"
        f" workflows; latencies over {report['sample']} sequential calls; ratio = project / floor"
    )
    print(
        f"{report['cpus']} CPUs, load average {report['load_at_start']} at the start, "
        f"{report['load_at_end']} at the end; {report['wall_seconds']:.0f} s in all"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--journeys", type=int, default=50, help="journeys walked to the end")
    parser.add_argument("--open", type=int, default=200, help="onboardings held open")
    parser.add_argument("--floor", type=int, default=200, help="trivial workflows for the floor")
    parser.add_argument("--sample", type=int, default=200, help="sequential calls per latency")
    parser.add_argument(
        "--wave", type=int, default=200, help="reminders falling due together (0: none)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    for name in ("journeys", "open", "floor", "sample"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.wave < 0:
        parser.error("--wave must be 0 or more")
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")  # to stderr
    report = in_scratch(
        partial(run, args),
        prefix="journeys-",
        keep=args.keep,
        children=CHILDREN,
        errors=(StackError, BenchmarkError, TimeoutError),
        note="logs in {folder}",
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
