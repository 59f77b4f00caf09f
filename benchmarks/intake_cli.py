"""The intake benchmark's yardstick: the same deals started with `starter.py`, as the sales
system did before the API. A bulk start (`start --from-csv FILE --concurrency C`) timed from
the command's launch to its exit, so its start-up (imports, connecting, reading the file) is
in the rate; and single starts (`start --from-file`) one after another, each timed from its
launch, process start included. CPU is the command's own (user + system, from getrusage of
the reaped child)."""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

from intake_plan import deals, spread, write_csv
from journey_cost import CLI_TIMEOUT_SECONDS, ROOT, BenchmarkError
from journeys_measure import CpuMeter


def children_cpu() -> float:
    """CPU seconds of the children reaped so far (the long-lived ones are not, until they end)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def timed(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """`starter.py ARGS`, which must succeed: its wall and CPU seconds, and its stdout. Killed
    when too slow, or when the run is interrupted meanwhile."""
    cpu, began = children_cpu(), time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "starter.py", *args, cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_SECONDS)
    except TimeoutError:
        raise BenchmarkError(
            f"`starter.py {' '.join(args)}` took over {CLI_TIMEOUT_SECONDS:.0f} s"
        ) from None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    wall = time.perf_counter() - began
    if process.returncode != 0:
        raise BenchmarkError(
            f"`starter.py {' '.join(args)}` exited {process.returncode}: {err.decode().strip()}"
        )
    return wall, children_cpu() - cpu, out.decode()


async def warm_up(env: dict[str, str], folder: Path) -> None:
    """One start not counted, so the counted ones find the bytecode cache written (the API,
    long-lived, pays its imports once; it gets a warm-up delivery of its own)."""
    await single_starts(env, folder, "warm-cli", 1)


async def bulk_start(
    env: dict[str, str], folder: Path, count: int, concurrency: int, others: dict[str, int]
) -> dict[str, float]:
    """`count` deals (`cli-0001`...) from one CSV file, `concurrency` at once; and the CPU of
    the `others` (name: pid) while it ran, in cores."""
    path = write_csv(folder / "cli-deals.csv", deals("cli", count))
    meter = CpuMeter(others).start()
    wall, cpu, out = await timed(
        env, "start", "--from-csv", str(path), "--concurrency", str(concurrency)
    )
    busy = {f"csv_{name}_cores": seconds / wall for name, seconds in meter.used().items()}
    if not out.startswith(f"{count} started, 0 already onboarding"):
        raise BenchmarkError(f"starter.py start --from-csv: {out.strip()}")
    return {
        "csv_seconds": wall,
        "csv_deals_per_s": count / wall,
        "csv_cpu_ms": cpu * 1000 / count,
    } | busy


async def single_starts(
    env: dict[str, str], folder: Path, prefix: str, sample: int
) -> dict[str, Any]:
    """`sample` deals (`prefix-0001`...), each its own `start --from-file`, one after another."""
    walls, cpus = [], []
    for deal in deals(prefix, sample):
        path = folder / f"{deal['account_id']}.json"
        path.write_text(json.dumps(deal))
        wall, cpu, _ = await timed(env, "start", "--from-file", str(path))
        walls.append(wall * 1000)
        cpus.append(cpu * 1000)
    return spread(walls, "single") | {"single_cpu_ms": sum(cpus) / len(cpus)}
