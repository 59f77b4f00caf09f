"""What the README's *Sizing a worker* promises of the worker's shape: its cache is the
setting's size, the workflow modules' bytecode is written for the sandbox, and the SQLite
default commits durably in write-ahead-log mode."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from infra.db import make_engine
from infra.settings import Settings
from worker import build_worker, compile_workflows

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
    assert Settings.model_fields["max_cached_workflows"].default == 2500


def test_a_cache_size_below_one_stops_the_worker_naming_the_variable(
    app_env: dict[str, str],
) -> None:
    result = subprocess.run(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=app_env | {"MAX_CACHED_WORKFLOWS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "MAX_CACHED_WORKFLOWS" in result.stderr and "Traceback" not in result.stderr


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
