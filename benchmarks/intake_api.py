"""The intake benchmark's API side: `api_server.py` started and waited for, signed deliveries
sent over C connections of one httpx client and timed, the API's own time per request read
from its access log, its CPU from /proc, and what Temporal started checked against what
should have been."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from faults_stack import Process, StackError, free_port, tail
from intake_plan import SECRET, Delivery, Kind, Plan, deals, judge, spread
from journey_cost import BenchmarkError
from journeys_measure import CpuMeter
from runs import warn
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.contract import ONBOARDING_WORKFLOW, onboarding_id

READY_SECONDS = 60.0
VISIBLE_SECONDS = 120.0
ACCESS_LOG = re.compile(r"POST /v1/deals (\d{3}) (\d+) ms$", re.MULTILINE)


def pid(process: Process) -> int:
    assert process.popen is not None
    return process.popen.pid


async def serve_api(api: Process, env: dict[str, str]) -> str:
    """`api_server.py` with the benchmark's secret, on a free loopback port; its URL once
    /readyz answers 200."""
    port = free_port()
    env = env | {
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "WEBHOOK_SECRET": SECRET,
        "API_TOKENS": json.dumps({"bench": "bench-token-0123456789abcdef"}),
        "API_RATE_LIMIT": "100000",  # the batch is one source: it must not be throttled
    }
    api.spawn([sys.executable, "api_server.py"], env)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + READY_SECONDS
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while True:
            if not api.alive:
                raise StackError(f"api_server.py exited:\n{tail(api.log)}")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"api_server.py not ready in {READY_SECONDS:.0f} s")
            await asyncio.sleep(0.2)


async def deliver(
    url: str, deliveries: list[Delivery], concurrency: int
) -> tuple[list[tuple[int, float]], float]:
    """Each delivery's status and latency (ms), `concurrency` in flight, each sender on a
    connection of its own; and the seconds the whole batch took."""
    answers: list[tuple[int, float]] = [(0, 0.0)] * len(deliveries)
    queue = iter(enumerate(deliveries))  # shared: each delivery is taken by one sender
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def sender() -> None:
            for index, delivery in queue:
                began = time.perf_counter()
                try:
                    status = (await http.post("/v1/deals", **delivery.request())).status_code
                except httpx.HTTPError as error:
                    warn(f"{delivery.account}: {type(error).__name__}: {error}")
                    status = 0
                answers[index] = (status, (time.perf_counter() - began) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return answers, time.perf_counter() - began


def handler_ms(log: Path, offset: int) -> dict[int, list[float]]:
    """The API's own time per /v1/deals request (its access log) after byte `offset`."""
    with log.open("rb") as file:
        file.seek(offset)
        text = file.read().decode(errors="replace")
    found: dict[int, list[float]] = {}
    for status, ms in ACCESS_LOG.findall(text):
        found.setdefault(int(status), []).append(float(ms))
    return found


async def started(client: Client, prefix: str, expected: list[str]) -> list[str]:
    """What is wrong with the onboardings Temporal holds for `prefix-*`: each expected account
    must have exactly one run, and no other account any."""
    query = (
        f'WorkflowType = "{ONBOARDING_WORKFLOW}" AND WorkflowId STARTS_WITH "onboarding-{prefix}-"'
    )
    deadline = time.monotonic() + VISIBLE_SECONDS
    while (await client.count_workflows(query)).count < len(expected):
        if time.monotonic() > deadline:
            break  # visibility lags; what it holds by now is judged below
        await asyncio.sleep(0.5)
    ids = [execution.id async for execution in client.list_workflows(query)]
    want = {onboarding_id(a) for a in expected}
    problems = (
        [f"{len(ids)} runs of {len(set(ids))} onboardings"] if len(ids) != len(set(ids)) else []
    )
    if missing := sorted(want - set(ids)):
        problems.append(f"{len(missing)} not started, e.g. {', '.join(missing[:5])}")
    if extra := sorted(set(ids) - want):
        problems.append(f"{len(extra)} started that should not be, e.g. {', '.join(extra[:5])}")
    return problems


async def exists(client: Client, account: str) -> bool:
    try:
        await client.get_workflow_handle(onboarding_id(account)).describe()
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def check(client: Client, batch: Plan, statuses: list[int]) -> None:
    problems = judge(batch, statuses) + await started(client, "bench", batch.valid)
    forged = await asyncio.gather(*(exists(client, a) for a in batch.forged))
    problems += [f"forged {a} was started" for a, e in zip(batch.forged, forged, strict=True) if e]
    if problems:
        shown = "\n  ".join(problems[:20])
        raise BenchmarkError(f"{len(problems)} problem(s) with the deliveries:\n  {shown}")


async def expect_started(client: Client, prefix: str, count: int) -> None:
    """Exactly one run for each of `prefix-0001`... `count`, and nothing else under `prefix`."""
    if problems := await started(client, prefix, [d["account_id"] for d in deals(prefix, count)]):
        raise BenchmarkError(f"{prefix}-*: {'; '.join(problems)}")


class ApiBatch:
    """The deliveries of a plan (intake_plan.plan), sent in parts (the run sends them around
    the CLI's batch, so a shared machine's changing load weighs on both alike), then checked
    and summed up: the latencies, the API's own time per request, and the CPU of the API and
    of the `others` (name: pid) while the parts ran."""

    def __init__(
        self, url: str, api: Process, batch: Plan, concurrency: int, others: dict[str, int]
    ) -> None:
        self.url, self.api, self.plan, self.concurrency = url, api, batch, concurrency
        self.pids = {"api": pid(api)} | others
        self.answers: list[tuple[int, float]] = []  # status, ms; in the plan's order
        self.seconds = 0.0
        self.used = dict.fromkeys(self.pids, 0.0)
        self.own: dict[int, list[float]] = {}

    async def send(self, part: slice) -> None:
        meter = CpuMeter(self.pids).start()
        offset = self.api.log.stat().st_size
        answers, seconds = await deliver(self.url, self.plan.deliveries[part], self.concurrency)
        self.used = {name: self.used[name] + cpu for name, cpu in meter.used().items()}
        for code, values in handler_ms(self.api.log, offset).items():
            self.own.setdefault(code, []).extend(values)
        self.answers += answers
        self.seconds += seconds

    async def figures(self, client: Client) -> dict[str, Any]:
        batch, answers, seconds = self.plan, self.answers, self.seconds
        await check(client, batch, [status for status, _ in answers])
        by_kind: dict[str, list[float]] = {"202": [], "200": [], "401": []}
        for status, ms in answers:  # each is one of these: check() holds
            by_kind[str(status)].append(ms)
        found: dict[str, Any] = {
            "distinct": len(batch.valid),
            "retries": sum(d.kind is Kind.RETRY for d in batch.deliveries),
            "forged": len(batch.forged),
            "batch_seconds": seconds,
            "requests_per_s": len(answers) / seconds,
            "new_per_s": len(batch.valid) / seconds,
            "cpu_ms_per_request": self.used["api"] * 1000 / len(answers),
        } | {f"{name}_cores": cpu / seconds for name, cpu in self.used.items()}
        for code, values in by_kind.items():
            own = self.own.get(int(code), [])
            found |= spread(values, f"api_{code}") | spread(own, f"own_{code}")
        return found


async def sequential(url: str, documents: list[dict[str, Any]]) -> list[float]:
    """Each deal delivered alone, one after another, each on a new connection (as webhooks
    arrive): its latency (ms). Each must be answered 202."""
    one_by_one = [Delivery(d["account_id"], Kind.NEW, json.dumps(d).encode()) for d in documents]
    answers = [(await deliver(url, [d], 1))[0][0] for d in one_by_one]
    if wrong := [status for status, _ in answers if status != 202]:
        raise BenchmarkError(f"sequential deliveries answered {wrong}, not 202")
    return [ms for _, ms in answers]
