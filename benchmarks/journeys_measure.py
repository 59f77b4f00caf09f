"""What the journey benchmark reads and computes: CPU time and RSS of a process from /proc,
percentiles, rates from start and close times, and the figure | project | floor | ratio table.
Pure functions (plus /proc reads), unit-tested without servers in tests/test_bench_helpers.py."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from temporalio.client import Client

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_stat_cpu(stat: str, ticks_per_second: int = CLOCK_TICKS) -> float:
    """utime + stime, in seconds, from the text of /proc/<pid>/stat. The command name (field 2)
    is in parentheses and may hold spaces or ')', so fields are counted after the last ')'."""
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def parse_status_rss(status: str) -> int:
    """Resident set size in bytes, from the text of /proc/<pid>/status (VmRSS, in kB)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError("no VmRSS line (a kernel thread, or the process has exited)")


def cpu_seconds(pid: int) -> float:
    return parse_stat_cpu(Path(f"/proc/{pid}/stat").read_text())


def rss_bytes(pid: int) -> int:
    return parse_status_rss(Path(f"/proc/{pid}/status").read_text())


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), interpolated between ranks as spreadsheets do."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rate(count: int, starts: Iterable[datetime], ends: Iterable[datetime]) -> float:
    """`count` per second over the span from the first start to the last end."""
    seconds = (max(ends) - min(starts)).total_seconds()
    return count / seconds if seconds > 0 else math.inf


@dataclass
class CpuMeter:
    """CPU seconds a set of processes used since `start()`."""

    pids: dict[str, int]
    at_start: dict[str, float] | None = None

    def start(self) -> CpuMeter:
        self.at_start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def used(self) -> dict[str, float]:
        assert self.at_start is not None, "start() first"
        return {name: cpu_seconds(pid) - self.at_start[name] for name, pid in self.pids.items()}


async def wait_quiet(
    pid: int, *, below: float = 0.05, window: float = 2.0, within: float = 600.0
) -> float:
    """Wait until the process has used less than `below` of a core over `window` seconds (its
    work is done); the monotonic time its last busy window ended. TimeoutError after `within`."""
    deadline = time.monotonic() + within
    step = window / 4
    samples = [(time.monotonic(), cpu_seconds(pid))]
    while True:
        await asyncio.sleep(step)
        now = time.monotonic()
        samples.append((now, cpu_seconds(pid)))
        samples = [s for s in samples if s[0] >= now - window - step / 2]
        (t0, c0), (t1, c1) = samples[0], samples[-1]
        if t1 - t0 >= window * 0.99 and (c1 - c0) / (t1 - t0) < below:
            return t0
        if now > deadline:
            raise TimeoutError(f"process {pid} still busy after {within:.0f} s")


# --- the report -------------------------------------------------------------------------------


@dataclass
class Figure:
    """One row: the project's value, the floor's in the same run (None where the engine has no
    counterpart), and how many decimals to show."""

    name: str
    unit: str
    project: float | None
    floor: float | None = None
    decimals: int = 1

    @property
    def ratio(self) -> float | None:
        if self.project is None or not self.floor:
            return None
        return self.project / self.floor

    def as_json(self) -> dict[str, object]:
        def rounded(value: float | None, decimals: int) -> float | None:
            return None if value is None else round(value, decimals)

        return {
            "figure": self.name,
            "unit": self.unit,
            "project": rounded(self.project, self.decimals + 1),
            "floor": rounded(self.floor, self.decimals + 1),
            "ratio": rounded(self.ratio, 3),
        }


def shown(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


def render_table(figures: Sequence[Figure]) -> str:
    """figure | project | floor | ratio (project / floor), right-aligned numbers."""
    headings = ["figure", "project", "floor", "ratio"]
    rows = [
        [
            f"{f.name} ({f.unit})" if f.unit else f.name,
            shown(f.project, f.decimals),
            shown(f.floor, f.decimals),
            shown(f.ratio, 2),
        ]
        for f in figures
    ]
    widths = [max(len(r[i]) for r in [headings, *rows]) for i in range(len(headings))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    return "\n".join([line(headings), line(["-" * w for w in widths]), *map(line, rows)])


async def latencies_ms(
    calls: Iterable[Callable[[], Awaitable[object]]], failed: list[str] | None = None
) -> list[float]:
    """Each call's wall time in milliseconds, one after another (as a person clicks). A call
    that fails is counted into `failed` (its error), when given, instead of ending the run."""
    found = []
    for call in calls:
        started = time.perf_counter()
        try:
            await call()
        except Exception as error:
            if failed is None:
                raise
            failed.append(f"{type(error).__name__}: {error}")
            continue
        found.append((time.perf_counter() - started) * 1000)
    return found


async def start_close_times(client: Client, query: str) -> tuple[list[datetime], list[datetime]]:
    """The start times, and the close times of those closed, of the workflows `query` finds."""
    starts, closes = [], []
    async for execution in client.list_workflows(query):
        starts.append(execution.start_time)
        if execution.close_time is not None:
            closes.append(execution.close_time)
    return starts, closes


async def wait_visible(client: Client, query: str, count: int, within: float = 60.0) -> None:
    """Until visibility (eventually consistent) counts `count` workflows for `query`."""
    deadline = time.monotonic() + within
    while (await client.count_workflows(query)).count < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} workflows for {query!r} after {within:.0f} s")
        await asyncio.sleep(0.5)


def thread_group(pid: int, tid: int, name: str) -> str:
    """Where a worker thread's CPU goes: the main thread runs the event loop (workflow
    activations, the sandbox, the SDK's Python side), `tokio-*` threads the SDK core (gRPC,
    state machines), the rest the activity executor's threads (and any others)."""
    if tid == pid:
        return "main"
    return "core" if name.startswith("tokio") else "other"


def threads_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread group (see thread_group) of the live threads of `pid`."""
    found: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        group = thread_group(pid, int(task.name), name)
        found[group] = found.get(group, 0.0) + parse_stat_cpu(stat)
    return found
