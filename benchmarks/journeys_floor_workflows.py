"""The engine's floor: the least a workflow with one activity can cost on the same server.
Kept apart from the benchmark's code so the sandbox imports nothing else with them."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

NOOP_ACTIVITY = "floor_noop"
TIMEOUT = timedelta(seconds=30)


@workflow.defn(name="FloorNoOp")
class FloorNoOp:
    """One no-op activity, then done: the floor for a journey."""

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(NOOP_ACTIVITY, start_to_close_timeout=TIMEOUT)


@workflow.defn(name="FloorWaiting")
class FloorWaiting:
    """One no-op activity, then waits until the `finish` signal: the floor for an open
    onboarding. Update `poke` (with a validator) and query `status` are the floor for
    `complete_milestone` and `status`."""

    def __init__(self) -> None:
        self.pokes = 0
        self.finished = False

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(NOOP_ACTIVITY, start_to_close_timeout=TIMEOUT)
        await workflow.wait_condition(lambda: self.finished)

    @workflow.signal
    def finish(self) -> None:
        self.finished = True

    @workflow.update
    def poke(self, by: str) -> int:
        self.pokes += 1
        return self.pokes

    @poke.validator
    def _check_poke(self, by: str) -> None:
        if not by:
            raise ValueError("who pokes?")

    @workflow.query
    def status(self) -> dict[str, int]:
        return {"pokes": self.pokes}
