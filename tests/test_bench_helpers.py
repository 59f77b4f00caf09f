"""The benchmarks' pure helpers: the journey benchmark's (benchmarks/journeys_measure.py)
/proc parsing, percentiles, rates and the report table; the intake benchmark's
(benchmarks/intake_plan.py) deliveries, how their answers are judged, and its CSV. No servers."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import HTTPException

from api.guards import Verifier, read_claim
from models.deal_csv import read_deals
from models.door import admit
from models.journey import OnboardingRequest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from intake_plan import SECRET, Kind, csv_row, deals, judge, plan, write_csv  # noqa: E402
from journeys_measure import (  # noqa: E402
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


# --- the intake benchmark ----------------------------------------------------------------------


def test_a_thousand_deliveries_are_750_deals_200_retries_and_50_forged() -> None:
    batch = plan(1000, seed=14)
    kinds = Counter(delivery.kind for delivery in batch.deliveries)
    assert kinds == {Kind.NEW: 750, Kind.RETRY: 200, Kind.WRONG_SECRET: 25, Kind.TAMPERED: 25}
    assert len(set(batch.valid)) == 750 and len(set(batch.forged)) == 50
    assert not set(batch.valid) & set(batch.forged)
    first: dict[str, tuple[Kind, bytes]] = {}
    for delivery in batch.deliveries:
        kind, body = first.setdefault(delivery.account, (delivery.kind, delivery.body))
        assert body == delivery.body  # a retry is the same bytes, as a CRM retries
        assert kind is not Kind.RETRY  # a retry re-delivers an earlier deal
    assert plan(1000, seed=14) == batch and plan(1000, seed=15) != batch


def test_only_the_valid_deliveries_carry_a_signature_the_api_accepts() -> None:
    verifier = Verifier(SECRET, {})
    for delivery in plan(40, seed=1).deliveries:
        arguments = delivery.request()
        claim = read_claim(arguments["headers"]["X-Signature"], time.time())
        if delivery.kind.forged:
            with pytest.raises(HTTPException) as refused:
                verifier.check("api", claim, arguments["content"])
            assert refused.value.status_code == 401
        else:
            verifier.check("api", claim, arguments["content"])
            assert arguments["content"] == delivery.body


def test_each_deal_must_get_one_202_whichever_delivery_won_the_race() -> None:
    batch = plan(20, seed=3)  # 15 deals, 4 retries, 1 forged
    right = [401 if d.kind.forged else 202 if d.kind is Kind.NEW else 200 for d in batch.deliveries]
    assert judge(batch, right) == []
    # A retry answered 202 and the first delivery 200: they raced, and that is right too.
    retry = next(i for i, d in enumerate(batch.deliveries) if d.kind is Kind.RETRY)
    new = next(
        i
        for i, d in enumerate(batch.deliveries)
        if d.kind is Kind.NEW and d.account == batch.deliveries[retry].account
    )
    raced = list(right)
    raced[retry], raced[new] = 202, 200
    assert judge(batch, raced) == []

    twice = list(right)
    twice[retry] = 202
    forged = next(i for i, d in enumerate(batch.deliveries) if d.kind.forged)
    twice[forged] = 202
    problems = judge(batch, twice)
    assert len(problems) == 2
    assert "not 401" in problems[0] and "[202, 202]" in problems[1]


def test_the_cli_is_given_the_same_deals_as_the_api(tmp_path: Path) -> None:
    documents = deals("cli", 3)
    assert [d["account_id"] for d in documents] == ["cli-0001", "cli-0002", "cli-0003"]
    assert csv_row(documents[0])["champion_email"] == documents[0]["champion"]["email"]
    read, errors = read_deals(write_csv(tmp_path / "deals.csv", documents))
    assert errors == []
    assert [deal.request for deal in read] == [
        admit(OnboardingRequest, json.dumps(d)) for d in documents
    ]


class Child:
    def __init__(self) -> None:
        self.killed = False

    def kill_now(self) -> None:
        self.killed = True


def test_a_benchmark_runs_in_a_scratch_folder_that_goes_with_what_it_started() -> None:
    from runs import in_scratch

    folders: list[Path] = []

    async def failing(folder: Path) -> int:
        folders.append(folder)
        (folder / "log").write_text("x")
        raise TimeoutError("the stack did not start")

    child = Child()
    assert (
        in_scratch(failing, prefix="t-", keep=False, children=[child], errors=(TimeoutError,))
        is None
    )
    assert child.killed and not folders[0].exists()

    async def fine(folder: Path) -> int:
        folders.append(folder)
        return 7

    assert in_scratch(fine, prefix="t-", keep=True, children=[], errors=()) == 7
    assert folders[1].is_dir()
    folders[1].rmdir()
