"""The engine's floor on the benchmark's dev server: trivial workflows with one no-op activity,
run by a worker inside the benchmark process with the SDK's defaults (sandbox included)."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from functools import partial
from typing import Any

from journey_cost import COLUMNS, cost
from journeys_floor_workflows import NOOP_ACTIVITY, FloorNoOp, FloorWaiting
from journeys_measure import (
    CpuMeter,
    latencies_ms,
    percentile,
    rate,
    rss_bytes,
    start_close_times,
    wait_visible,
)
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

SETTLE_SECONDS = 600.0


class NoOp:
    """The floor's activity; counts its runs so the benchmark sees when a batch has settled."""

    def __init__(self) -> None:
        self.runs = 0
        self.changed = asyncio.Event()

    @activity.defn(name=NOOP_ACTIVITY)
    async def noop(self) -> None:
        self.runs += 1
        self.changed.set()

    async def wait_runs(self, count: int, within: float) -> None:
        deadline = time.monotonic() + within
        while self.runs < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), max(0.0, deadline - time.monotonic()))


async def start_all(
    client: Client, workflow: str, ids: list[str], task_queue: str, concurrency: int
) -> None:
    """Start the workflows, `concurrency` at once (as `starter.py start --from-csv` does)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(workflow_id: str) -> None:
        async with gate:
            await client.start_workflow(workflow, id=workflow_id, task_queue=task_queue)

    await asyncio.gather(*map(one, ids))


async def measure_floor(
    client: Client, server_pid: int, count: int, open_count: int, sample: int, concurrency: int
) -> dict[str, Any]:
    """Figures keyed as the project's are (see journeys.py)."""
    task_queue = f"floor-{uuid.uuid4()}"
    noop = NoOp()
    worker = Worker(
        client, task_queue=task_queue, workflows=[FloorNoOp, FloorWaiting], activities=[noop.noop]
    )
    found: dict[str, Any] = {}
    me = os.getpid()
    async with worker:
        # Workflows with one no-op activity, all started at once, run to their end.
        ids = [f"floor-noop-{n}" for n in range(count)]
        meter = CpuMeter({"worker": me, "server": server_pid}).start()
        await start_all(client, "FloorNoOp", ids, task_queue, concurrency)
        await asyncio.gather(*(client.get_workflow_handle(i).result() for i in ids))
        used = meter.used()
        query = 'WorkflowType = "FloorNoOp" AND ExecutionStatus = "Completed"'
        await wait_visible(client, query, count)
        found["throughput_per_s"] = rate(count, *await start_close_times(client, query))
        found["cpu_worker_ms"] = used["worker"] * 1000 / count
        found["cpu_server_ms"] = used["server"] * 1000 / count
        history = await cost(client, ids[0])
        for heading, event_type in COLUMNS[:3]:
            found[heading] = history.figure(event_type)

        # Workflows that run their activity and then wait, held open.
        ids = [f"floor-open-{n}" for n in range(open_count)]
        rss_before = rss_bytes(me)
        noop.runs = 0
        meter.start()
        t0 = time.monotonic()
        await start_all(client, "FloorWaiting", ids, task_queue, concurrency)
        await noop.wait_runs(open_count, SETTLE_SECONDS)
        found["settle_s"] = time.monotonic() - t0
        used = meter.used()
        found["open_cpu_ms"] = (used["worker"] + used["server"]) * 1000 / open_count
        query = 'WorkflowType = "FloorWaiting"'
        await wait_visible(client, query, open_count)
        starts, _ = await start_close_times(client, query)
        found["starts_per_s"] = rate(open_count, starts, starts)
        found["rss_mib"] = rss_bytes(me) / 2**20
        found["rss_per_open_kib"] = (rss_bytes(me) - rss_before) / 1024 / open_count

        rng = random.Random(12)
        handles = [client.get_workflow_handle(i) for i in rng.sample(ids, min(sample, len(ids)))]
        queries = await latencies_ms(partial(h.query, "status") for h in handles)
        updates = await latencies_ms(partial(h.execute_update, "poke", "bench") for h in handles)
        for name, values in (("query", queries), ("update", updates)):
            found[f"{name}_p50_ms"] = percentile(values, 50)
            found[f"{name}_p99_ms"] = percentile(values, 99)

        # Let them end, so the server holds only the project's open work from here on.
        gate = asyncio.Semaphore(concurrency)

        async def finish(workflow_id: str) -> None:
            async with gate:
                await client.get_workflow_handle(workflow_id).signal("finish")

        await asyncio.gather(*map(finish, ids))
        await wait_visible(client, query + ' AND ExecutionStatus = "Completed"', open_count, 300)
    return found
