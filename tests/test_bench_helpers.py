"""The journey benchmark's pure helpers (benchmarks/journeys_measure.py): /proc parsing,
percentiles, rates and the report table. No servers."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from journeys_measure import (
    Figure,
    cpu_seconds,
    parse_stat_cpu,
    parse_status_rss,
    percentile,
    rate,
    render_table,
    rss_bytes,
    thread_group,
    threads_cpu,
)

# A real /proc/<pid>/stat line, its command name holding a space and a ')'.
STAT = (
    "4242 (python worker) x) S 1 4242 4242 0 -1 4194560 52311 0 12 0 "
    "1234 567 0 0 20 0 19 0 880 1081344000 33000 18446744073709551615 1 1 0 0 0 0 0 "
    "16781312 16386 0 0 0 17 1 0 0 0 0 0"
)


def test_cpu_is_utime_plus_stime_after_the_command_name() -> None:
    assert parse_stat_cpu(STAT, ticks_per_second=100) == pytest.approx(18.01)


def test_rss_is_read_from_vmrss_in_kib() -> None:
    status = "Name:\tpython\nVmPeak:\t  900000 kB\nVmRSS:\t  131072 kB\nThreads:\t19\n"
    assert parse_status_rss(status) == 128 * 2**20
    with pytest.raises(ValueError):
        parse_status_rss("Name:\tkthreadd\nThreads:\t1\n")


def test_this_process_can_be_read() -> None:
    assert cpu_seconds(os.getpid()) > 0
    assert rss_bytes(os.getpid()) > 2**20


def test_percentiles_interpolate_between_ranks() -> None:
    values = [40.0, 10.0, 30.0, 20.0]
    assert percentile(values, 50) == 25.0
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(list(map(float, range(1, 101))), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_rate_spans_the_first_start_to_the_last_end() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [t0, t0 + timedelta(seconds=1)]
    ends = [t0 + timedelta(seconds=3), t0 + timedelta(seconds=4)]
    assert rate(8, starts, ends) == 2.0


def test_the_table_gives_project_floor_and_their_ratio() -> None:
    rows = [
        Figure("journeys/s", "", 1.5, 18.0, 2),
        Figure("idle after", "s", 12.0, None),
    ]
    lines = render_table(rows).splitlines()
    assert lines[0].split() == ["figure", "project", "floor", "ratio"]
    assert lines[2].split() == ["journeys/s", "1.50", "18.00", "0.08"]
    assert lines[3].split() == ["idle", "after", "(s)", "12.0", "-", "-"]
    assert rows[0].as_json()["ratio"] == 0.083
    assert rows[1].as_json()["ratio"] is None


def test_threads_are_grouped_main_core_other() -> None:
    assert thread_group(10, 10, "python") == "main"
    assert thread_group(10, 11, "tokio-runtime-w") == "core"
    assert thread_group(10, 12, "python") == "other"
    assert "main" in threads_cpu(os.getpid())
