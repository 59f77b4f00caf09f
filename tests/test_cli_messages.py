"""Messages in the user's words (issue 13): every refusal says what is accepted, durations read
in days and hours, help shows names and not Python types, an unreachable Temporal or a taken
port is one line naming what was tried, and an ordinary refusal is one line in the worker's
log. Each runs the program as a person does: starter.py, worker.py or scripts/run-local in a
subprocess."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import typer.main

import starter as starter_py  # noqa: F401  (importing it registers every command on the app)
from cli.app import app
from models.wording import duration, human_durations
from tests.conftest import ROOT, app_environment, deal_file, free_port, starter, wait_for_stage

# What Python, pydantic or the Rust SDK say, which no message may carry.
PYTHON_WORDS = (
    "Input should",
    "input is too short",
    "String should match",
    "Field required",
    "0:00:00",
    "tonic::",
    "ConnectError",
    "Traceback",
)


def no_python_words(text: str) -> None:
    assert [words for words in PYTHON_WORDS if words in text] == [], text


@pytest.fixture
def offline(tmp_path: Path) -> dict[str, str]:
    """starter.py's environment with a Temporal address nobody serves."""
    return app_environment(f"127.0.0.1:{free_port()}", tmp_path) | {"COLUMNS": "400"}


# --- what a person types ------------------------------------------------------------------------


def test_a_bad_account_id_is_said_as_a_rule_with_its_brackets(
    offline: dict[str, str], tmp_path: Path
) -> None:
    for account in ("Acme Corp", "[bold]acme"):  # the second would be rich markup
        result = starter(offline, "start", "--from-file", deal_file_as(tmp_path, account))
        assert result.returncode == 1, result.stderr
        assert (
            f"account_id: {account!r} is not an id: use 1 to 63 lowercase letters, digits and "
            "hyphens, starting with a letter or digit"
        ) in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        no_python_words(result.stderr)


def deal_file_as(tmp_path: Path, account: str) -> str:
    data = json.loads((ROOT / "examples" / "deal-acme.json").read_text())
    path = tmp_path / "deal.json"
    path.write_text(json.dumps(data | {"account_id": account}))
    return str(path)


def test_a_missing_csm_field_names_the_option(offline: dict[str, str]) -> None:
    result = starter(offline, "csm", "add", "csm-099", "--name", "Mei Tan", "--email", "m@x.io")
    assert result.returncode == 2
    assert "say which touch models they serve, e.g. --touch-models high,low" in result.stderr
    no_python_words(result.stderr)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["signal", "acme", "kickoff-held", "--by", "csm-007", "--at", "yesterday"],
            r"'yesterday' is not a time; use a time with its zone like "
            r"\d{4}-\d\d-\d\dT09:00Z or \d{4}-\d\d-\d\dT09:00\+02:00",
        ),
        (
            ["signal", "acme", "kickoff-held", "--by", "csm-007", "--at", "2026-07-01T09:00"],
            r"'2026-07-01T09:00' has no time zone; add Z for UTC or an offset such as \+02:00, "
            r"e.g. 2026-07-01T09:00Z",
        ),
        (
            ["extend", "acme", "--by", "banana", "--reason", "r"],
            r"say how far: --for AMOUNT, e.g. \+7d, 36h or 2w, or --until WHEN, a date like "
            r"\d{4}-\d\d-\d\d or a time .*\('banana' after --by is who extends\)",
        ),
        (
            ["extend", "acme", "--for", "banana", "--reason", "r"],
            r"'banana' is not an amount of time; use \+7d, 36h or 2w",
        ),
        (
            ["extend", "acme", "--until", "tomorrow", "--reason", "r"],
            r"'tomorrow' is not a time; use a date like \d{4}-\d\d-\d\d or a time with its zone",
        ),
        (
            ["extend", "acme", "--for", "+999w", "--reason", "r"],
            r"'\+999w' is 6,993 days; at most 730 days",
        ),
        (
            ["extend", "acme", "--for", "2d", "--until", "2030-01-01", "--reason", "r"],
            r"give --for or --until, not both",
        ),
        (
            ["extend", "acme", "--for", "2d", "--by", "+2d", "--reason", "r"],
            r"'\+2d' is not a person; --by names who extends",
        ),
        (
            ["report", "--from", "last week"],
            r"'last week' is not a time; use a date like \d{4}-\d\d-\d\d or a time",
        ),
        (["start", "--from-csv", "x.csv", "--concurrency", "0"], r"0: use 1 to 64"),
    ],
    ids=lambda value: " ".join(value[:4]) if isinstance(value, list) else "",
)
def test_a_refused_value_says_what_is_accepted(
    args: list[str], says: str, offline: dict[str, str]
) -> None:
    result = starter(offline, *args)
    assert result.returncode == 2, result.stderr
    flat = " ".join(line.strip("│ ") for line in result.stderr.splitlines())  # the panel's lines
    assert re.search(says, flat), flat
    assert "cannot reach Temporal" not in flat  # refused before connecting
    no_python_words(flat)


def test_durations_read_in_days_and_hours() -> None:
    assert duration(timedelta(days=30)) == "30 days"
    assert duration(timedelta(days=2, hours=4)) == "2 days 4 hours"
    assert duration(timedelta(hours=1)) == "1 hour"
    assert duration(timedelta(minutes=90)) == "1 hour 30 minutes"
    assert duration(timedelta(seconds=40)) == "40 seconds"
    assert duration(timedelta(days=6993)) == "6,993 days"
    assert (
        human_durations("moving it by 30 days, 0:00:00 in total; 2 days, 4:00:00 is left")
        == "moving it by 30 days in total; 2 days 4 hours is left"
    )


# --- help ---------------------------------------------------------------------------------------

COMMANDS = [
    [name]
    for name in sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
] + [["csm", "add"], ["csm", "update"], ["csm", "remove"], ["csm", "list"]]


@pytest.mark.parametrize("command", [[], *COMMANDS], ids=lambda c: " ".join(c) or "top")
def test_help_shows_names_not_python_types(command: list[str], offline: dict[str, str]) -> None:
    result = starter(offline | {"COLUMNS": "80"}, *command, "--help")
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    assert not re.search(r"<(str|bool|int|float|path|list\[|datetime)", shown), shown
    assert "int range" not in shown and "<=x" not in shown
    usage = next(line for line in shown.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage


def test_help_keeps_sentences_whole(offline: dict[str, str]) -> None:
    """A docstring's line breaks are not the terminal's: at 200 columns a command's
    description of up to 150 characters is one line, not cut where its source line ended."""
    wide = starter(offline | {"COLUMNS": "200"}, "--help").stdout
    assert (
        "Start an account's onboarding from the sales system's deal document, or many from a "
        "CSV export (already-onboarding accounts are reported, not started twice)."
    ) in wide
    assert (
        "Close the rows of onboardings whose run ended without recording it (terminated, "
        "failed, timed out): their CSM's capacity is freed and the scorecard counts them."
    ) in wide


def test_extend_help_names_for_until_and_by(offline: dict[str, str]) -> None:
    shown = starter(offline | {"COLUMNS": "100"}, "extend", "--help").stdout
    assert "--for" in shown and "AMOUNT" in shown
    assert "--until" in shown and "WHEN" in shown
    assert re.search(r"--by\s+WHO\s+Who moves it \(default: you, ", shown), shown
    assert "--who" not in shown  # the old name still works, unshown


# --- Temporal out of reach ----------------------------------------------------------------------


def test_an_unreachable_temporal_is_one_line_with_the_address_and_what_to_check(
    offline: dict[str, str],
) -> None:
    address = offline["TEMPORAL_ADDRESS"]
    result = starter(offline, "status", "acme")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot reach Temporal at {address}: nothing is listening there; check that "
        "the server is up (`make run` starts one) and that TEMPORAL_ADDRESS (or your Temporal "
        "profile) names it"
    ]


def test_an_unknown_host_is_said_so(offline: dict[str, str]) -> None:
    result = starter(offline | {"TEMPORAL_ADDRESS": "no-such-host.invalid:7233"}, "list")
    assert result.returncode == 1
    assert "cannot reach Temporal at no-such-host.invalid:7233: that host name is not known" in (
        result.stderr
    )
    no_python_words(result.stderr)


def test_the_worker_without_temporal_says_so_in_one_line(offline: dict[str, str]) -> None:
    env = offline | {"LOG_FORMAT": "text"}
    result = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert (
        f"ERROR worker cannot start: cannot reach Temporal at {env['TEMPORAL_ADDRESS']}"
        in (lines[0])
    )


def test_the_worker_with_its_metrics_port_taken_says_so_in_one_line(
    offline: dict[str, str],
) -> None:
    with held_port() as port:
        env = offline | {"LOG_FORMAT": "text", "METRICS_PORT": str(port)}
        result = subprocess.run(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"cannot serve metrics on port {port}" in lines[0]
    assert "Set METRICS_PORT to a free port, or 0 for none" in lines[0]


# --- on a running onboarding --------------------------------------------------------------------


def test_extend_for_until_and_the_old_by(
    app_env: dict[str, str], worker_process: subprocess.Popen[str], tmp_path: Path
) -> None:
    account = "messages-extend"
    started = starter(
        app_env, "start", "--from-file", deal_file(tmp_path, "acme", account_id=account)
    )
    assert started.returncode == 0, started.stderr
    assert starter(app_env, "signal", account, "contract-signed", "--by", "ae-001").returncode == 0
    wait_for_stage(app_env, account, "kickoff")

    new = starter(
        app_env, "extend", account, "--for", "+2d", "--by", "csm-007", "--reason", "holiday"
    )
    assert new.returncode == 0, new.stderr
    assert f"accepted: the stage of {account} now due" in new.stdout and new.stderr == ""

    # Scripts written for `--by +7d` keep working, and are told the new spelling.
    old = starter(app_env, "extend", account, "--by", "+1d", "--reason", "their IT")
    assert old.returncode == 0, old.stderr
    assert old.stderr.strip() == (
        "note: --by +1d is the old spelling of --for +1d; --by now names who extends"
    )

    # The playbook allows 30 days in all: the refusal says what is left, in days and hours.
    over = starter(app_env, "extend", account, "--for", "+40d", "--reason", "too far")
    assert over.returncode == 1
    assert over.stderr.strip() == (
        "error: rejected: the playbook allows moving this deadline by 30 days in total; "
        "27 days is left"
    )
    until = starter(app_env, "extend", account, "--until", "2001-01-01", "--reason", "typo")
    assert until.returncode == 1 and "2001-01-01 00:00 UTC is in the past" in until.stderr

    status = starter(app_env | {"COLUMNS": "200"}, "status", account).stdout
    assert "0:00:00" not in status


def test_an_ordinary_refusal_is_one_line_in_the_worker_log(
    app_env: dict[str, str], worker_process: subprocess.Popen[str], tmp_path: Path
) -> None:
    account = "messages-reassign"
    started = starter(
        app_env, "start", "--from-file", deal_file(tmp_path, "acme", account_id=account)
    )
    assert started.returncode == 0, started.stderr
    assert starter(app_env, "signal", account, "contract-signed", "--by", "ae-001").returncode == 0
    wait_for_stage(app_env, account, "kickoff")

    refused = starter(app_env, "reassign", account, "--to", "csm-999", "--reason", "try")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: rejected: unknown CSM 'csm-999' (active: ")

    log = (tmp_path / "worker.log").read_text()
    about = [json.loads(line) for line in log.splitlines() if "csm-999" in line]
    reason = refused.stderr.removeprefix("error: rejected: ").strip()
    assert [entry["message"] for entry in about] == [f"refused: {reason}"]
    assert all("error" not in entry for entry in about)  # no traceback attached
    assert "Traceback" not in log and "Completing activity as failed" not in log


# --- make run's ports ---------------------------------------------------------------------------

PORT_VARIABLES = {
    "TEMPORAL_PORT": "Temporal",
    "TEMPORAL_UI_PORT": "the Web UI",
    "CODEC_SERVER_PORT": "the codec server",
    "METRICS_PORT": "the worker's metrics",
    "API_PORT": "the HTTP API",
}


class held_port:  # noqa: N801  (used as a context manager, like open())
    """A port on loopback held by a listening socket, as another `make run` would hold it."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.fixture
def run_local_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """scripts/run-local's environment: free ports for everything, and a `temporal` on PATH
    that only records being called (so a check that let it through could start nothing)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    called = tmp_path / "temporal-was-called"
    (fake / "temporal").write_text(f"#!/bin/sh\ntouch {called}\n")
    (fake / "temporal").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "CODEC_", "API_"))}
    env["PATH"] = f"{fake}:{Path(sys.executable).parent}:{env['PATH']}"
    env |= {variable: str(free_port()) for variable in PORT_VARIABLES}
    yield env, called


@pytest.mark.parametrize("variable", PORT_VARIABLES)
def test_run_local_refuses_at_once_when_a_port_is_taken(
    variable: str, run_local_env: tuple[dict[str, str], Path]
) -> None:
    env, called = run_local_env
    with held_port() as port:
        result = subprocess.run(
            [str(ROOT / "scripts" / "run-local")],
            env=env | {variable: str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"cannot start: port {port}, for {PORT_VARIABLES[variable]}, is already in use; is "
        f"another `make run` up? Stop it, or set {variable} to a free port"
    ]
    assert not called.exists()  # nothing was started
