"""`starter.py replay-check`, the gate before a deploy: which runs it picks (no server), and on
the real dev server, runs moved along by `worker.py` replayed by `starter.py` as an engineer
runs it — from this tree, and from a copy of it with a workflow change that breaks them, then
with the same change behind `workflow.patched`."""

from __future__ import annotations

import json
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.workflow import NondeterminismError

from service.replay import Run, Verdict, choose, divergence
from tests.conftest import (
    ROOT,
    app_environment,
    free_port,
    starter,
    wait_for_stage,
    worker_running,
)
from workflows.contract import EVERBOARDING_WORKFLOW, ONBOARDING_WORKFLOW

# --- which runs (no server) -------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def runs(count: int, stage: str = "adopt", status: str = "running", kind: str = "onb") -> list[Run]:
    """`count` runs of one kind, started a day apart (the first is the oldest)."""
    workflow_type = ONBOARDING_WORKFLOW if kind == "onb" else EVERBOARDING_WORKFLOW
    return [
        Run(
            workflow_id=f"{kind}-{stage}-{status}-{n}",
            run_id=f"run-{kind}-{stage}-{status}-{n}",
            workflow_type=workflow_type,
            status=status,
            started_at=T0 + timedelta(days=n),
            stage=stage if kind == "onb" else None,
        )
        for n in range(count)
    ]


CLUSTER = [
    *runs(40, "adopt"),
    *runs(3, "kickoff"),
    *runs(1, "review"),
    *runs(20, "completed", "completed"),
    *runs(5, "adopt", "continued_as_new"),
    *runs(30, kind="evb", stage="-"),
]


def test_every_run_is_replayed_up_to_the_sample_size() -> None:
    few = runs(3) + runs(2, kind="evb", stage="-")
    assert sorted(choose(few, 5, seed=1), key=lambda r: r.key) == sorted(few, key=lambda r: r.key)
    assert choose([], 5, seed=1) == []


def test_a_sample_holds_the_oldest_and_newest_of_every_type_and_stage() -> None:
    chosen = choose(CLUSTER, 20, seed=1)
    assert len(chosen) == 20 and len({run.key for run in chosen}) == 20
    ids = {run.workflow_id for run in chosen}
    for stage, status, count, kind in [
        ("adopt", "running", 40, "onb"),
        ("kickoff", "running", 3, "onb"),
        ("review", "running", 1, "onb"),
        ("completed", "completed", 20, "onb"),
        ("adopt", "continued_as_new", 5, "onb"),
        ("-", "running", 30, "evb"),
    ]:
        assert f"{kind}-{stage}-{status}-0" in ids  # the oldest
        assert f"{kind}-{stage}-{status}-{count - 1}" in ids  # the newest


def test_a_sample_is_the_same_for_the_same_seed_whatever_the_listing_order() -> None:
    first = choose(CLUSTER, 20, seed=7)
    assert choose(list(reversed(CLUSTER)), 20, seed=7) == first
    assert choose(CLUSTER, 20, seed=8) != first  # the random part moves with the seed


def test_a_sample_smaller_than_the_kinds_of_runs_takes_running_ones_first() -> None:
    chosen = choose(CLUSTER, 4, seed=1)
    assert all(run.status == "running" for run in chosen)
    assert {run.workflow_type for run in chosen} == {ONBOARDING_WORKFLOW, EVERBOARDING_WORKFLOW}
    with pytest.raises(ValueError):
        choose(CLUSTER, 0, seed=1)


CORE_FAILURE = (
    'Workflow activation completion failed: Failure { failure: Some(Failure { message: "[TMPRL1100]'
    " Nondeterminism error: Timer machine does not handle this event: HistoryEvent(id: 5, "
    'ActivityTaskScheduled)", source: "", stack_trace: "", encoded_attributes: None, cause: None '
    "}), force_cause: NonDeterministicError }"
)


def test_the_divergence_is_the_core_message_in_one_line() -> None:
    assert divergence(NondeterminismError(CORE_FAILURE)) == (
        "[TMPRL1100] Nondeterminism error: Timer machine does not handle this event: "
        "HistoryEvent(id: 5, ActivityTaskScheduled)"
    )
    # What workflow code or the codec raised is named by its type.
    assert divergence(KeyError("stage")) == "KeyError: 'stage'"
    long = divergence(RuntimeError("x" * 1000 + "\nsecond line"))
    assert len(long) == 300 and long.endswith("…") and "\n" not in long


def test_the_verdict_counts_by_type_and_names_the_broken_runs() -> None:
    onboarding, everboarding = runs(1)[0], runs(1, kind="evb", stage="-")[0]
    verdict = Verdict(
        found=Counter({ONBOARDING_WORKFLOW: 9, EVERBOARDING_WORKFLOW: 1}), chosen=2, seed=3
    )
    verdict.record(onboarding, NondeterminismError(CORE_FAILURE), nondeterministic=True)
    verdict.record(everboarding, None, nondeterministic=False)
    assert not verdict.passed and verdict.sampled
    report = verdict.as_json()
    assert report["replayed"] == {EVERBOARDING_WORKFLOW: 1, ONBOARDING_WORKFLOW: 1}
    assert report["broken"] == [
        {
            "workflow_id": onboarding.workflow_id,
            "run_id": onboarding.run_id,
            "workflow_type": ONBOARDING_WORKFLOW,
            "status": "running",
            "stage": "adopt",
            "divergence": divergence(NondeterminismError(CORE_FAILURE)),
            "nondeterministic": True,
        }
    ]


# --- on the dev server ------------------------------------------------------------------------


async def new_namespace(env: WorkflowEnvironment) -> str:
    """A namespace of this module's own: the gate replays every run of its namespace, and
    the other tests' runs (some encrypted with their own keys) are none of its business."""
    name = f"replay-{uuid.uuid4().hex[:8]}"
    await env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    return name


KEYS = "k1=" + "A" * 43 + "="  # payloads encrypted: the gate must decode with the same keys


@pytest.fixture(scope="module")
async def cluster(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, str]]:
    """Three onboardings moved along by `worker.py` (one in depart, one in adopt, one
    completed with its everboarding running); the worker is stopped before the checks."""
    folder = tmp_path_factory.mktemp("cluster")
    env = app_environment(dev_env.client.service_client.config.target_host, folder)
    env |= {"TEMPORAL_NAMESPACE": await new_namespace(dev_env), "ENCRYPTION_KEYS": KEYS}
    with worker_running(env, folder / "worker.log"):
        for account in ("acme", "globex", "initech"):
            result = starter(env, "start", "--from-file", f"examples/deal-{account}.json")
            assert result.returncode == 0, result.stderr
        for milestone in ("contract-signed", "kickoff-held"):
            assert starter(env, "signal", "acme", milestone, "--by", "csm-007").returncode == 0
        wait_for_stage(env, "globex", "adopt")  # its deal is signed, its kickoff automated
        for milestone in ("integration-done", "review-passed"):
            assert starter(env, "signal", "globex", milestone, "--by", "csm-007").returncode == 0
        wait_for_stage(env, "acme", "adopt")
        assert wait_for_stage(env, "globex", "completed")["everboarding_status"] == "running"
    yield env


async def listed_runs(env: dict[str, str]) -> set[tuple[str, str]]:
    client = await Client.connect(env["TEMPORAL_ADDRESS"], namespace=env["TEMPORAL_NAMESPACE"])
    return {
        (execution.id, execution.run_id)
        async for execution in client.list_workflows(f"WorkflowType = '{ONBOARDING_WORKFLOW}'")
    }


def test_runs_replay_on_the_code_they_ran_on(cluster: dict[str, str]) -> None:
    result = starter(cluster, "replay-check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 runs running or closed within 7d" in result.stdout
    assert (
        "replayed 1 EverboardingWorkflow run, 3 OnboardingWorkflow runs: every one replays on "
        "this code"
    ) in result.stdout

    result = starter(cluster, "replay-check", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] and not report["sampled"] and report["broken"] == []
    assert report["replayed"] == {EVERBOARDING_WORKFLOW: 1, ONBOARDING_WORKFLOW: 3}


def test_a_sample_and_a_history_over_the_limit(cluster: dict[str, str]) -> None:
    result = starter(cluster, "replay-check", "--sample", "2", "--max-events", "20", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sampled"] and report["chosen"] == 2
    assert sum(report["replayed"].values()) + len(report["skipped"]) == 2
    assert report["skipped"], "onboarding-acme, in adopt, has more than 20 events"
    assert report["skipped"][0]["reason"] == "its history is longer than 20 events (--max-events)"


def copy_of_the_project(folder: Path) -> Path:
    """The code as a new release would ship it: no venv, git, data or caches."""
    copy = folder / "release"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", ".data", "__pycache__", ".*_cache", "artifacts", ".env"
        ),
    )
    return copy


def edit_the_onboarding(copy: Path, statement: str) -> None:
    """Put `statement` first in the onboarding's journey: a command every recorded run's
    history has something else at."""
    module = copy / "workflows" / "onboarding" / "workflow.py"
    code = module.read_text()
    at = "    async def _journey(self) -> None:\n"
    assert code.count(at) == 1, "the journey moved: update this test"
    module.write_text(code.replace(at, at + statement))


async def test_an_incompatible_change_is_refused_naming_each_run_it_breaks(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    copy = copy_of_the_project(tmp_path)
    edit_the_onboarding(copy, "        await workflow.sleep(1)  # new: a timer first\n")

    result = starter(cluster, "replay-check", cwd=copy)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line][1:]
    assert {(row[0], row[1]) for row in rows} == await listed_runs(cluster)
    for row in rows:
        assert row[2] == ONBOARDING_WORKFLOW
        assert row[3].startswith("[TMPRL1100] Nondeterminism error: Timer machine does not")
    assert "3 of 4 runs would break on this code: version the change with workflow.patched" in (
        result.stderr
    )
    assert "everboarding" not in result.stdout.split("first divergent command")[1]
    assert "Traceback" not in result.stderr

    report = json.loads(starter(cluster, "replay-check", "--json", cwd=copy).stdout)
    assert not report["passed"]
    assert sorted(b["workflow_id"] for b in report["broken"]) == [
        "onboarding-acme",
        "onboarding-globex",
        "onboarding-initech",
    ]
    assert {b["stage"] for b in report["broken"]} == {"adopt", "completed", "depart"}


def test_the_same_change_behind_a_patch_passes(cluster: dict[str, str], tmp_path: Path) -> None:
    copy = copy_of_the_project(tmp_path)
    edit_the_onboarding(
        copy,
        '        if workflow.patched("replay-gate-test"):\n            await workflow.sleep(1)\n',
    )
    result = starter(cluster, "replay-check", cwd=copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every one replays on this code" in result.stdout


def test_without_the_keys_the_runs_cannot_be_read_and_it_says_so(cluster: dict[str, str]) -> None:
    other_key = {"ENCRYPTION_KEYS": "k2=" + "B" * 43 + "="}
    result = starter(cluster | other_key, "replay-check")
    assert result.returncode == 1
    assert "DecryptionError: payload encrypted with key id 'k1'" in result.stdout
    assert "4 of 4 runs would break on this code" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_namespace_with_no_runs_has_nothing_to_replay(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = app_environment(dev_env.client.service_client.config.target_host, tmp_path)
    env["TEMPORAL_NAMESPACE"] = await new_namespace(dev_env)
    result = starter(env, "replay-check", "--closed-within", "2w")
    assert result.returncode == 0, result.stderr
    assert "no onboardings or everboardings running or closed within 2w: nothing to replay" in (
        result.stdout
    )


@pytest.mark.parametrize(
    "args",
    [["--sample", "0"], ["--sample", "abc"], ["--max-events", "0"], ["--closed-within", "soon"]],
    ids=" ".join,
)
def test_bad_options_are_usage_errors_naming_the_option(args: list[str], tmp_path: Path) -> None:
    env = app_environment(f"127.0.0.1:{free_port()}", tmp_path)
    result = starter(env, "replay-check", *args)
    assert result.returncode == 2
    assert args[0] in result.stderr


def test_temporal_unreachable_is_a_clear_failure(tmp_path: Path) -> None:
    env = app_environment(f"127.0.0.1:{free_port()}", tmp_path)
    result = starter(env, "replay-check")
    assert result.returncode == 1
    assert "cannot reach Temporal at 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr
