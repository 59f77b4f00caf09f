"""What the README's *Sizing a worker* promises of the worker's shape: its cache is the
setting's size, a long garbage collection is logged with what to do, the workflow modules'
bytecode is written for the sandbox, and the SQLite default commits durably in WAL mode."""

from __future__ import annotations

import gc
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from infra.db import make_engine
from infra.settings import Settings
from worker import build_worker, compile_workflows, watch_collections

ROOT = Path(__file__).resolve().parent.parent


async def test_the_worker_keeps_as_many_runs_as_the_setting_says(
    time_env: WorkflowEnvironment, settings: Settings, task_queue: str
) -> None:
    sized = settings.model_copy(update={"max_cached_workflows": 3210})
    with ThreadPoolExecutor(max_workers=2) as executor:
        worker = build_worker(
            time_env.client, sized, executor, task_queue=task_queue, activity_threads=2
        )
        assert worker.config()["max_cached_workflows"] == 3210
    assert Settings.model_fields["max_cached_workflows"].default == 1000


def test_the_workflow_modules_bytecode_is_written_even_where_python_is_told_not_to() -> None:
    source = ROOT / "workflows" / "onboarding" / "workflow.py"
    cached = source.parent / "__pycache__" / f"workflow.{sys.implementation.cache_tag}.pyc"
    cached.unlink(missing_ok=True)
    compile_workflows()
    assert cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime


def test_sqlite_commits_durably_in_write_ahead_log_mode(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    engine.dispose()


def test_a_long_garbage_collection_is_logged_with_what_to_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    observe = watch_collections(threshold=0.0)  # every collection is "long" here
    try:
        with caplog.at_level(logging.WARNING, logger="worker"):
            gc.collect()
    finally:
        gc.callbacks.remove(observe)
    assert any(
        "garbage collection (generation 2) paused the worker" in r.getMessage()
        and "MAX_CACHED_WORKFLOWS" in r.getMessage()
        for r in caplog.records
    )
    caplog.clear()
    quiet = watch_collections()  # the worker's own threshold: a small collection says nothing
    try:
        with caplog.at_level(logging.WARNING, logger="worker"):
            gc.collect(0)
    finally:
        gc.callbacks.remove(quiet)
    assert not caplog.records
