"""Worker Deployment versioning: the build id and the settings (no server), and two versions
of `worker.py` on the real dev server — a run started on the first continues on the second as
its versioning behaviour says, and `doctor` shows the versions and the runs on each."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import VersioningBehavior
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from infra.settings import Settings, SettingsError, default_build_id, load_settings
from models.everboarding import EverboardingInput
from models.journey import Engagement, EngagementKind
from tests.conftest import (
    app_environment,
    binary,
    deal,
    deal_file,
    eventually,
    starter,
    worker_running,
)
from worker import deployment_config
from workflows.contract import SEARCH_ATTRIBUTES, TASK_QUEUE
from workflows.everboarding import EverboardingWorkflow

# --- the build id and the settings ---------------------------------------------------------


def project(folder: Path, version: str = "0.5.0") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "x"\nversion = "{version}"\n')
    return folder


def test_the_build_id_is_the_release_version_where_there_is_no_git(tmp_path: Path) -> None:
    assert default_build_id(project(tmp_path / "image")) == "0.5.0"


def test_the_build_id_carries_the_commit_in_a_git_checkout(tmp_path: Path) -> None:
    root = project(tmp_path / "checkout", "0.6.1")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "first"], cwd=root, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    assert default_build_id(root) == f"0.6.1+{commit}"


def test_a_git_folder_without_a_commit_gives_the_version(tmp_path: Path) -> None:
    root = project(tmp_path / "fresh")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    assert default_build_id(root) == "0.5.0"


def test_the_settings_name_the_version_the_workers_poll_as() -> None:
    given = Settings(worker_deployment="cs-onboarding", worker_build_id="0.4.0+6b1d39d")
    version = given.deployment_version()
    assert version.to_canonical_string() == "cs-onboarding.0.4.0+6b1d39d"
    derived = Settings(worker_build_id="").deployment_version()  # the image's empty default
    assert derived.deployment_name == "onboarding"
    assert derived.build_id == default_build_id(Path(__file__).resolve().parent.parent)


def test_versioning_is_off_unless_the_setting_turns_it_on() -> None:
    assert deployment_config(Settings()) is None
    config = deployment_config(Settings(worker_versioning=True, worker_build_id="7"))
    assert config is not None and config.use_worker_versioning
    assert config.version.to_canonical_string() == "onboarding.7"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("WORKER_DEPLOYMENT", "on.boarding", "no '.'"),
        ("WORKER_DEPLOYMENT", "", "1 to 100 letters"),
        ("WORKER_BUILD_ID", "0.4.0 rc1", "e.g. 0.4.0+6b1d39d"),
        ("WORKER_BUILD_ID", "onboarding:1", "e.g. 0.4.0+6b1d39d"),
        ("WORKER_BUILD_ID", "x" * 129, "1 to 128"),
    ],
)
def test_a_bad_deployment_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, words: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"{variable}=.*{re.escape(words)}"):
        load_settings()


# --- two versions on the dev server -----------------------------------------------------------

V1, V2 = "0.3.0+aaaaaaa", "0.4.0+bbbbbbb"


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of its own: making a version current routes the `onboarding` task queue,
    which the other tests' unversioned workers poll on the shared one."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        ui=False,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def env(server: WorkflowEnvironment, tmp_path: Path) -> dict[str, str]:
    return app_environment(server.client.service_client.config.target_host, tmp_path) | {
        "WORKER_VERSIONING": "true"
    }


def worker_as(
    env: dict[str, str], build_id: str, log: Path
) -> AbstractContextManager[subprocess.Popen[str]]:
    """`worker.py` polling as version `build_id` (its own metrics port), as ops start one."""
    return worker_running(env | {"WORKER_BUILD_ID": build_id, "METRICS_PORT": "0"}, log)


async def build_of(handle: WorkflowHandle) -> tuple[str, str]:
    """The version the run's last workflow task ran on, and its versioning behaviour."""
    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
    return info.deployment_version.build_id, VersioningBehavior(info.behavior).name


def set_current(env: dict[str, str], build_id: str) -> None:
    """What the README's deploy steps run."""
    done = subprocess.run(
        [binary("temporal"), "worker", "deployment", "set-current-version"]
        + ["--address", env["TEMPORAL_ADDRESS"], "--deployment-name", "onboarding"]
        + ["--build-id", build_id, "--yes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


async def test_runs_move_to_a_new_version_as_their_versioning_behaviour_says(
    server: WorkflowEnvironment, env: dict[str, str], tmp_path: Path
) -> None:
    client: Client = server.client
    with worker_as(env, V1, tmp_path / "v1.log"):
        # The deployment's first version makes itself current: a new stack just runs.
        await eventually(
            lambda: "is current: the deployment's first" in (tmp_path / "v1.log").read_text()
        )
        started = starter(
            env, "start", "--from-file", deal_file(tmp_path, "acme", account_id="vers")
        )
        assert started.returncode == 0, started.stderr
        onboarding = client.get_workflow_handle("onboarding-vers")
        everboarding = await client.start_workflow(
            EverboardingWorkflow.run,
            EverboardingInput(
                request=deal("acme", account_id="vers-ever"),
                csm=None,
                cadence=timedelta(days=30),
                history_limit=60,
            ),
            id="everboarding-vers-ever",
            task_queue=TASK_QUEUE,
        )
        # Where the first workflow task ran (it may not have run yet).
        await eventually(lambda: _on(onboarding, V1))
        await eventually(lambda: _on(everboarding, V1))
        assert await build_of(onboarding) == (V1, "AUTO_UPGRADE")

        with worker_as(env, V2, tmp_path / "v2.log"):
            await eventually(
                lambda: "but 0.3.0+aaaaaaa is current" in (tmp_path / "v2.log").read_text()
            )
            doctor = starter(env, "doctor")
            assert "ok   deployment: onboarding: current 0.3.0+aaaaaaa" in doctor.stdout
            assert f"version {V1}: current, 1 onboarding(s) and 1 everboarding(s)" in doctor.stdout
            assert f"version {V2}: never current, 0 onboarding(s)" in doctor.stdout

            set_current(env, V2)
            # The onboarding auto-upgrades: its next task (this signal) runs on the new version.
            signed = starter(env, "signal", "vers", "contract-signed", "--by", "ae-001")
            assert signed.returncode == 0, signed.stderr
            await eventually(lambda: _on(onboarding, V2))
            # So does the everboarding, at its next task (a ticket wakes it).
            await everboarding.signal(
                EverboardingWorkflow.engagement,
                Engagement(kind=EngagementKind.SUPPORT_TICKET, value="T-1"),
            )
            latest = client.get_workflow_handle(everboarding.id)
            await eventually(lambda: _on(latest, V2))
            assert (await build_of(latest)) == (V2, "AUTO_UPGRADE")

            doctor = starter(env, "doctor")
            assert doctor.returncode == 0, doctor.stdout
            assert "ok   deployment: onboarding: current 0.4.0+bbbbbbb" in doctor.stdout
            assert f"version {V2}: current, 1 onboarding(s) and 1 everboarding(s)" in doctor.stdout
            assert (
                f"version {V1}: draining, 0 onboarding(s) and 0 everboarding(s)" in (doctor.stdout)
                or f"version {V1}: drained, 0 onboarding(s)" in doctor.stdout
            )
            await latest.terminate("test over")
            await onboarding.terminate("test over")


async def _on(handle: WorkflowHandle, build_id: str) -> bool:
    return (await build_of(handle))[0] == build_id
