"""How long `starter.py` takes to answer before it does any work, against the import floor (a
benchmark; issue 12: at most 1.5 times the floor).

    .venv/bin/python benchmarks/cli_startup.py [--runs N] [--json FILE]

The floor is a Python process that imports what every command needs and nothing of ours:
`import temporalio.client, typer, rich, pydantic`. Against it, each command that talks to
Temporal only, started as a person starts it: its `--help` (and the top level's), and a few
usage errors that are refused before anything is reached. Nothing here connects to Temporal
or opens a database, so no server is needed and none is started.

The runs are interleaved, one of each in turn and in a new random order each round, so a
machine whose load changes meanwhile slows the floor and the commands alike. The report gives
each one's median wall time and its ratio to the floor's, then the same for the CPU time the
process used (user + system), which other work on the machine disturbs less than the wall
clock. The children run with Python's bytecode cache on, as on a developer's machine (this
workplace sets PYTHONDONTWRITEBYTECODE, which would compile our modules on every run), after
one round that is not counted. A command that exits with another code than expected (one that
went on to connect, say) is an error, not a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runs import exit_with, warn

ROOT = Path(__file__).resolve().parent.parent
FLOOR = "import temporalio.client, typer, rich, pydantic"
GOAL = 1.5

# The commands that talk to Temporal only (start, report, reconcile, doctor and csm also need
# the database or the playbooks; their --help is as cheap, but they are not the goal).
TEMPORAL_ONLY = (
    "signal",
    "task",
    "extend",
    "pause",
    "resume",
    "cancel",
    "engagement",
    "ack",
    "champion",
    "users",
    "reassign",
    "announce",
    "churn",
    "incident",
    "status",
    "list",
)
# Refused by the parser or by the command before it connects: exit 2.
USAGE_ERRORS = (
    ("signal", "acme", "no-such-milestone", "--by", "csm-007"),
    ("task", "acme", "add-users", "--by", "csm-007"),  # without --done
    ("list", "--stage", "no-such-stage"),
)


@dataclass
class Case:
    name: str
    argv: list[str]
    exit_code: int
    times: list[float]
    cpu: list[float]


def cases() -> list[Case]:
    starter = [sys.executable, str(ROOT / "starter.py")]
    found = [Case("floor", [sys.executable, "-c", FLOOR], 0, [], [])]
    found.append(Case("--help", [*starter, "--help"], 0, [], []))
    found += [
        Case(f"{name} --help", [*starter, name, "--help"], 0, [], []) for name in TEMPORAL_ONLY
    ]
    found += [Case(" ".join(args), [*starter, *args], 2, [], []) for args in USAGE_ERRORS]
    return found


def environment(folder: Path) -> dict[str, str]:
    """The user's environment with the bytecode cache on, and nothing to reach: a Temporal
    address and a database nobody serves, no encryption keys."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith(("TEMPORAL_", "ENCRYPTION_"))
    }
    env.update(
        TEMPORAL_ADDRESS="127.0.0.1:1",
        DATABASE_URL=f"sqlite:///{folder / 'none.db'}",
        ENCRYPTION_KEYS_FILE=str(folder / "no-keys"),
        COLUMNS="100",
    )
    return env


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(case: Case, env: dict[str, str]) -> tuple[float, float]:
    """The wall and CPU seconds of one run."""
    cpu = children_cpu()
    started = time.perf_counter()
    result = subprocess.run(case.argv, cwd=ROOT, env=env, capture_output=True, timeout=60)
    elapsed = time.perf_counter() - started
    if result.returncode != case.exit_code:
        raise RuntimeError(
            f"{case.name}: exit {result.returncode}, expected {case.exit_code}\n"
            + result.stderr.decode(errors="replace")
        )
    return elapsed, children_cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each (default 10)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    all_cases = cases()
    with tempfile.TemporaryDirectory() as folder:
        env = environment(Path(folder))
        warn(f"{len(all_cases)} commands, 1 + {args.runs} rounds")
        for case in all_cases:  # warm-up: bytecode written, files in the page cache
            run_once(case, env)
        for _ in range(args.runs):
            for case in random.sample(all_cases, len(all_cases)):
                wall, cpu = run_once(case, env)
                case.times.append(wall)
                case.cpu.append(cpu)
    floor, floor_cpu = statistics.median(all_cases[0].times), statistics.median(all_cases[0].cpu)
    rows = [
        (case.name, statistics.median(case.times), statistics.median(case.cpu))
        for case in all_cases[1:]
    ]
    width = max(len(row[0]) for row in rows)
    print(f"{'command':<{width}} | median s | floor s | ratio | cpu s | floor cpu s | cpu ratio")
    for name, wall, cpu in rows:
        print(
            f"{name:<{width}} | {wall:8.3f} | {floor:7.3f} | {wall / floor:5.2f} | "
            f"{cpu:5.3f} | {floor_cpu:11.3f} | {cpu / floor_cpu:9.2f}"
        )
    worst = max(rows, key=lambda row: row[1])
    worst_cpu = max(rows, key=lambda row: row[2])
    load = os.getloadavg()[0]
    print(
        f"\nfloor: `{FLOOR}`; medians of {args.runs} runs. Worst: {worst[0]} "
        f"{worst[1] / floor:.2f}x wall, {worst_cpu[0]} {worst_cpu[2] / floor_cpu:.2f}x CPU "
        f"(goal <= {GOAL}x). {os.cpu_count()} cores, load average {load:.1f}, "
        f"Python {sys.version.split()[0]}."
    )
    if args.json:
        report = {
            "floor": {"median_s": floor, "cpu_s": floor_cpu},
            "commands": {
                name: {
                    "median_s": wall,
                    "ratio": wall / floor,
                    "cpu_s": cpu,
                    "cpu_ratio": cpu / floor_cpu,
                }
                for name, wall, cpu in rows
            },
            "runs": args.runs,
            "cores": os.cpu_count(),
            "load_average": load,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    exit_with(main)
