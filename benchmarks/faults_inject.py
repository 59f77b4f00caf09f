"""The faults of the run: when each happens (drawn from the seed) and doing it to the stack."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

from faults_stack import AppDatabase, DevServer, Event, SmtpServer, StackError, WorkerSlot

WORKER_KILLS = 6
DB_DROPS = 3
SMTP_OUTAGE_SECONDS = 30.0
# Faults at least this far apart, so each duplicate can be put down to one of them.
MIN_GAP_SECONDS = 6.0


@dataclass(frozen=True)
class FaultPlan:
    """(seconds after the journeys started, fault), in order."""

    faults: list[tuple[float, str]]

    @classmethod
    def draw(cls, rng: random.Random, window: float) -> FaultPlan:
        kinds = ["worker-kill"] * WORKER_KILLS + ["db-drop"] * DB_DROPS
        kinds += ["smtp-outage", "temporal-restart"]
        # The first moments start the journeys' first activities; the outage must end in time.
        low, high = 0.05 * window, window - SMTP_OUTAGE_SECONDS
        slack = high - low - (len(kinds) - 1) * MIN_GAP_SECONDS
        if slack < 0:
            raise StackError(f"a window of {window:.0f} s is too short for {len(kinds)} faults")
        # Uniform moments with the gaps taken out, then put back: every gap at least MIN_GAP.
        times = sorted(rng.uniform(0, slack) for _ in kinds)
        times = [low + t + n * MIN_GAP_SECONDS for n, t in enumerate(times)]
        rng.shuffle(kinds)
        return cls(list(zip(times, kinds, strict=True)))


class Injector:
    """Carries out a plan; `events` is what it did, when (epoch seconds)."""

    def __init__(
        self,
        plan: FaultPlan,
        rng: random.Random,
        temporal: DevServer,
        smtp: SmtpServer,
        database: AppDatabase,
        workers: list[WorkerSlot],
    ) -> None:
        self.plan = plan
        self.rng = rng
        self.temporal = temporal
        self.smtp = smtp
        self.database = database
        self.workers = workers
        self.events: list[Event] = []
        self.t0 = time.time()
        # Held while a slot is being killed and restarted, so the watchdog leaves it alone.
        self.busy = {w.name: asyncio.Lock() for w in workers}

    def record(self, kind: str, detail: str = "", worker: str = "") -> None:
        event = Event(time.time(), kind, detail, worker)
        self.events.append(event)
        said = " ".join(part for part in (kind, worker, detail) if part)
        print(f"[{event.t - self.t0:5.0f} s] {said}", file=sys.stderr, flush=True)

    async def run(self, t0: float) -> None:
        self.t0 = t0
        watchdog = asyncio.create_task(self.watch())
        outage: asyncio.Task[None] | None = None
        try:
            for at, kind in self.plan.faults:
                await asyncio.sleep(max(0.0, t0 + at - time.time()))
                if kind == "worker-kill":
                    await self.kill_worker(self.rng.choice(self.workers))
                elif kind == "db-drop":
                    dropped = await asyncio.to_thread(self.database.drop_connections)
                    self.record("db-drop", f"{dropped} connections")
                elif kind == "smtp-outage":
                    outage = asyncio.create_task(self.smtp_outage())
                elif kind == "temporal-restart":
                    await self.restart_temporal()
            if outage is not None:
                await outage
        finally:
            watchdog.cancel()
            if outage is not None:
                outage.cancel()

    async def kill_worker(self, slot: WorkerSlot) -> None:
        async with self.busy[slot.name]:
            self.record("worker-kill", worker=slot.current)
            await slot.kill()
            await asyncio.sleep(self.rng.uniform(1, 3))  # a supervisor's restart delay
            await slot.start()
            self.record("worker-start", worker=slot.current)

    async def smtp_outage(self) -> None:
        self.record("smtp-down")
        await self.smtp.kill()
        await asyncio.sleep(SMTP_OUTAGE_SECONDS)
        await self.smtp.start()
        self.record("smtp-up")

    async def restart_temporal(self) -> None:
        self.record("temporal-down")
        await self.temporal.stop()
        await self.temporal.start()
        self.record("temporal-up")

    async def watch(self) -> None:
        """A worker that exits on its own (not killed by the plan) is noted and restarted."""
        while True:
            await asyncio.sleep(1)
            for slot in self.workers:
                lock = self.busy[slot.name]
                if lock.locked() or slot.alive:
                    continue
                async with lock:
                    self.record("worker-exit", f"exit code {slot.exit_code()}", slot.current)
                    try:
                        await slot.start()
                    except StackError as error:
                        self.record("worker-lost", str(error), slot.current)
                        continue
                    self.record("worker-start", worker=slot.current)

    def summary(self, t0: float) -> dict[str, Any]:
        def at(e: Event) -> float:
            return round(e.t - t0, 1)

        def of(kind: str) -> list[Event]:
            return [e for e in self.events if e.kind == kind]

        downs, ups = of("temporal-down"), of("temporal-up")
        smtp_downs, smtp_ups = of("smtp-down"), of("smtp-up")
        return {
            "worker_kills": [{"at_seconds": at(e), "worker": e.worker} for e in of("worker-kill")],
            "worker_exits": [
                {"at_seconds": at(e), "worker": e.worker, "detail": e.detail}
                for e in of("worker-exit")
            ],
            "smtp_outage_seconds": round(
                sum(u.t - d.t for d, u in zip(smtp_downs, smtp_ups, strict=False)), 1
            ),
            "smtp_outages": [
                {"down_at_seconds": at(d), "up_at_seconds": at(u)}
                for d, u in zip(smtp_downs, smtp_ups, strict=False)
            ],
            "db_drops": [
                {"at_seconds": at(e), "connections": int(e.detail.split()[0])}
                for e in of("db-drop")
            ],
            "temporal_restarts": [
                {"down_at_seconds": at(d), "up_at_seconds": at(u)}
                for d, u in zip(downs, ups, strict=False)
            ],
        }
