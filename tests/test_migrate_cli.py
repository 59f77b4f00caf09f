"""`starter.py migrate` as ops run it, on the dev server with `worker.py`: the preview, the
apply that does what the preview printed, `--where`, and bad input that changes nothing."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from models.playbook import load_playbook
from tests.conftest import ROOT, deal_file, starter, status_json, wait_for_stage

SSO = """
[[stages.adopt.tasks]]
id = "connect-sso"
title = "Connect SSO"
owner = "customer"
due = "10d"
"""


@pytest.fixture
def playbooks(app_env: dict[str, str], tmp_path: Path) -> Path:
    """A copy of the shipped playbooks the starter reads (PLAYBOOK_DIR), to edit."""
    folder = tmp_path / "playbooks"
    shutil.copytree(ROOT / "playbooks", folder)
    app_env["PLAYBOOK_DIR"] = str(folder)
    return folder


def edit_standard(folder: Path) -> str:
    """SSO added to Adopt, configuring given a week more; the new version."""
    path = folder / "standard.toml"
    text = path.read_text()
    assert text.count('due = "21d"') == 1
    path.write_text(text.replace('due = "21d"', 'due = "28d"') + SSO)
    return load_playbook(folder, "standard").version()


class Accounts:
    """This test's accounts (the dev server is the whole session's): `where` picks them."""

    def __init__(self) -> None:
        self.prefix = f"m{uuid.uuid4().hex[:6]}"

    def __call__(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def where(self, also: str = "") -> str:
        mine = f'WorkflowId STARTS_WITH "onboarding-{self.prefix}-"'
        return f"{mine} AND {also}" if also else mine


def migrate(env: dict[str, str], *args: str):  # noqa: ANN201
    return starter(env, "migrate", "--playbook", "standard", *args)


def test_preview_then_apply_does_what_the_preview_printed(
    app_env: dict[str, str], worker_process, playbooks: Path, tmp_path: Path
) -> None:
    old = load_playbook(playbooks, "standard").version()
    mine = Accounts()
    acme, globex, initech = mine("acme"), mine("globex"), mine("initech")
    for example in ("acme", "globex", "initech"):
        deal = deal_file(tmp_path, example, account_id=mine(example))
        assert starter(app_env, "start", "--from-file", deal).returncode == 0
    for milestone in ("contract-signed", "kickoff-held"):
        assert starter(app_env, "signal", acme, milestone, "--by", "csm-007").returncode == 0
    wait_for_stage(app_env, acme, "adopt")
    wait_for_stage(app_env, globex, "adopt")
    assert status_json(app_env, acme)["playbook_version"] == old
    in_adopt = mine.where('OnboardingStage="adopt"')

    result = migrate(app_env, "--preview", "--where", mine.where())
    assert result.returncode == 0, result.stderr
    assert "3 running onboarding(s) on standard: 0 would change" in result.stdout

    new = edit_standard(playbooks)
    result = migrate(app_env, "--preview", "--where", in_adopt)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"{acme} (adopt): playbook standard {old} → {new}" in text
    assert '+ task connect-sso: "Connect SSO", due ' in text
    assert "~ task configure: " in text and "(+7d)" in text
    assert "2 running onboarding(s) on standard: 2 would change (0 with parts refused)" in text
    assert initech not in text
    preview = json.loads(migrate(app_env, "--preview", "--json", "--where", in_adopt).stdout)

    result = migrate(app_env, "--apply", "--by", "ops-1", "--json", "--where", in_adopt)
    assert result.returncode == 0, result.stderr
    applied = json.loads(result.stdout)
    assert [run["account_id"] for run in applied["runs"]] == [acme, globex]
    for before, after in zip(preview["runs"], applied["runs"], strict=True):
        assert after["applied"] and after["changes"] == before["changes"]
        assert after["digest"] == before["digest"]

    status = status_json(app_env, acme)
    assert status["playbook_version"] == new
    assert "connect-sso" in {task["id"] for task in status["tasks"]}
    assert status_json(app_env, initech)["playbook_version"] == old  # not in --where
    status = starter(app_env, "status", acme)
    assert f"playbook standard ({new})" in status.stdout, status.stdout

    result = migrate(app_env, "--preview", "--where", mine.where())
    assert "3 running onboarding(s) on standard: 1 would change" in result.stdout
    assert "2 already on" in result.stdout


def test_bad_input_is_refused_and_changes_nothing(
    app_env: dict[str, str], worker_process, playbooks: Path, tmp_path: Path
) -> None:
    mine = Accounts()
    globex = mine("globex")
    deal = deal_file(tmp_path, "globex", account_id=globex)
    assert starter(app_env, "start", "--from-file", deal).returncode == 0
    wait_for_stage(app_env, globex, "adopt")
    old = status_json(app_env, globex)["playbook_version"]

    result = starter(app_env, "migrate", "--playbook", "nope", "--preview")
    assert result.returncode == 2 and "unknown playbook 'nope'" in result.stderr
    assert "--playbook" in result.stderr

    broken = playbooks / "standard.toml"
    broken.write_text(broken.read_text().replace('deadline = "45d"', 'deadline = "soon"'))
    result = migrate(app_env, "--apply", "--by", "ops-1", "--where", mine.where())
    assert result.returncode == 2
    assert "stages.adopt.deadline" in result.stderr and "nothing changed" in result.stderr
    shutil.copy(ROOT / "playbooks" / "standard.toml", broken)

    edit_standard(playbooks)
    result = migrate(
        app_env, "--apply", "--by", "ops-1", "--where", mine.where('OnboardingStage="review"')
    )
    assert result.returncode == 1
    assert "no running onboarding matching --where" in result.stderr

    result = migrate(app_env, "--apply", "--by", "ops-1", "--where", "OnboardingStage ==== 1")
    assert result.returncode == 1 and "--where: Temporal cannot use it" in result.stderr

    # Brackets that would reach past the running onboardings.
    result = migrate(app_env, "--preview", "--where", '1=1) OR (WorkflowId="x"')
    assert result.returncode == 1 and "brackets or quotes do not pair" in result.stderr

    # The file changed since the preview the lead read.
    result = migrate(app_env, "--apply", "--by", "ops-1", "--version", old)
    assert result.returncode == 2 and f"not {old}: it changed since that preview" in result.stderr

    assert migrate(app_env).returncode == 2  # neither --preview nor --apply
    result = migrate(app_env, "--apply")
    assert result.returncode == 2 and "--by" in result.stderr
    assert status_json(app_env, globex)["playbook_version"] == old


def test_parts_the_rules_refuse_are_named_and_the_exit_code_says_so(
    app_env: dict[str, str], worker_process, playbooks: Path, tmp_path: Path
) -> None:
    """A kickoff task added to the file: a run in Adopt passed kickoff, so that part is
    refused for it; the rest applies, and the exit code (3) says parts were refused."""
    mine = Accounts()
    globex = mine("globex")
    deal = deal_file(tmp_path, "globex", account_id=globex)
    assert starter(app_env, "start", "--from-file", deal).returncode == 0
    wait_for_stage(app_env, globex, "adopt")
    path = playbooks / "standard.toml"
    lines = path.read_text().splitlines(keepends=True)
    [at] = [n for n, line in enumerate(lines) if line.startswith('    { id = "academy-access"')]
    lines.insert(at + 1, '    { id = "late", title = "Late", due = "1d" },\n')  # tech's kickoff
    path.write_text("".join(lines).replace('due = "21d"', 'due = "28d"'))
    version = load_playbook(playbooks, "standard").version()

    narrow = app_env | {"COLUMNS": "60"}  # the command to copy stays on one line
    result = migrate(narrow, "--preview", "--where", mine.where())
    assert f"--apply --version {version} --by YOUR-ID" in result.stdout
    assert "! stage kickoff (refused): already passed: task late added" in result.stdout

    result = migrate(
        app_env, "--apply", "--version", version, "--by", "ops-1", "--where", mine.where()
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "1 changed (1 with parts refused)" in result.stdout
    status = status_json(app_env, globex)
    assert status["playbook_version"] == version
    assert "late" not in {task["id"] for task in status["tasks"]}
    assert [a["by"] for a in status["playbook_adoptions"]] == ["ops-1"]


def test_what_every_run_gets_is_said_once_above_the_runs() -> None:
    from datetime import UTC, datetime

    from cli.migrate import Report
    from models.enums import Stage
    from models.migration import Change, ChangeKind, MigrationPlan

    setting = Change(kind=ChangeKind.CHANGED, subject="risk.quiet_high", before="14d", after="10d")

    def plan(account: str, *more: Change) -> MigrationPlan:
        return MigrationPlan(
            account_id=account,
            playbook="standard",
            stage=Stage.ADOPT,
            from_version="a",
            to_version="b",
            changes=[setting, *more],
        )

    moved = Change(
        kind=ChangeKind.MOVED, subject="task configure", after_at=datetime(2027, 1, 3, tzinfo=UTC)
    )
    report = Report("standard", "b", [plan("acme", moved), plan("globex")], {}, applied=False)
    assert report.common() == ["~ risk.quiet_high: 14d → 10d"]
    assert Report("standard", "b", [plan("acme", moved)], {}, applied=False).common() == []
