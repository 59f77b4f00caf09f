"""Output a person can act on: every id they type next (account, task, course, module, CSM,
stage) is whole in `list` and `status` at 80 columns — on a terminal and through a pipe."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from cli.tables import Rows
from tests.conftest import deal_file, starter, status_json, wait_for_stage

ACCOUNT = "whole-ids-at-eighty-columns-41"


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_every_id_is_whole_at_80_columns(
    app_env: dict[str, str],
    worker_process: subprocess.Popen[str],
    tmp_path: Path,
    terminal: bool,
) -> None:
    if status_json_or_none(app_env) is None:
        started = starter(
            app_env, "start", "--from-file", deal_file(tmp_path, "acme", account_id=ACCOUNT)
        )
        assert started.returncode == 0, started.stderr
        starter(app_env, "signal", ACCOUNT, "contract-signed", "--by", "ae-001")
    status = wait_for_stage(app_env, ACCOUNT, "kickoff")
    ids = {ACCOUNT, status["csm_id"], *(t["id"] for t in status["tasks"])}
    ids |= {c["id"] for c in status["learning"]}
    ids |= {m["id"] for c in status["learning"] for m in c["modules"]}
    assert len(ids) > 8

    env = app_env | {"COLUMNS": "80"}
    if terminal:  # laid out as on an 80-column terminal, without colour codes in the way
        env |= {"TTY_COMPATIBLE": "1", "NO_COLOR": "1"}
    shown = starter(env, "list").stdout + starter(env, "status", ACCOUNT).stdout
    lines = shown.splitlines()
    assert [i for i in sorted(ids) if not any(i in line for line in lines)] == []
    assert "…" not in shown
    if not terminal:  # plain rows: `cut -f1` gives the account
        listed = starter(env, "list").stdout.splitlines()
        assert listed[0].split("\t")[:2] == ["account", "stage"]
        assert ACCOUNT in [line.split("\t")[0] for line in listed[1:]]


def status_json_or_none(env: dict[str, str]) -> dict | None:
    found = starter(env, "status", ACCOUNT, "--json")
    return status_json(env, ACCOUNT) if found.returncode == 0 else None


def test_free_text_wraps_and_ids_stay_whole_in_a_narrow_table() -> None:
    rows = Rows(("task", "note"), {"task"})
    rows.add("integration-with-the-warehouse-system", "a long note " * 12)
    console = Console(width=40, record=True, force_terminal=True, no_color=True)
    rows.print(console)
    text = console.export_text()
    assert "integration-with-the-warehouse-system" in text and "…" not in text
