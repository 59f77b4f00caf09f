"""Worker logs for a log pipeline: JSON lines that name the account and run, including the
lines the SDK's Rust core writes (they would otherwise bypass Python logging)."""

from __future__ import annotations

import asyncio
import json
import logging

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.logs import JsonFormatter
from infra.settings import worker_runtime
from tests.conftest import binary


def test_a_workflow_log_line_names_its_account_and_run() -> None:
    record = logging.LogRecord(
        "temporalio.workflow", logging.WARNING, "", 0, "escalation", (), None
    )
    record.temporal_workflow = {
        "workflow_id": "onboarding-acme",
        "run_id": "r-1",
        "workflow_type": "OnboardingWorkflow",
    }
    entry = json.loads(JsonFormatter().format(record))
    assert entry["account_id"] == "acme" and entry["workflow_id"] == "onboarding-acme"
    assert (entry["level"], entry["message"], entry["run_id"]) == ("warning", "escalation", "r-1")


@activity.defn
async def nothing() -> None:
    pass


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_the_sdk_cores_warnings_go_through_python_logging() -> None:
    """The time-skipping server lacks a capability the core warns about when an activity
    worker starts: that warning must reach the `temporalio.core` logger."""
    collect = Collect()
    core = logging.getLogger("temporalio.core")
    core.addHandler(collect)
    try:
        env = await WorkflowEnvironment.start_time_skipping(
            runtime=worker_runtime(metrics_port=0),
            test_server_existing_path=binary("temporal-test-server"),
        )
        async with Worker(env.client, task_queue="logs", activities=[nothing]):
            for _ in range(50):
                if collect.records:
                    break
                await asyncio.sleep(0.1)
        await env.shutdown()
    finally:
        core.removeHandler(collect)
    assert any(r.levelno == logging.WARNING for r in collect.records)
    assert "heartbeat" in JsonFormatter().format(collect.records[0])
