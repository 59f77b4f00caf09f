"""What `starter.py` loads before it does any work (issue 12). Nothing here is timed: the time
is measured by benchmarks/cli_startup.py. These tests keep what makes it short: each runs the
CLI in a subprocess as a person does, through a wrapper that writes down `sys.modules` as the
process leaves, and checks what is not there.

- `--help` (of every command) and the usage errors the parser refuses load none of our
  messages (the models/ modules build their pydantic schemas as they are imported), no
  settings (pydantic-settings), no database, templates, chat or cipher libraries.
- A command that talks to Temporal only, run up to its connection (to a port nobody serves),
  loads the messages and settings it needs, but still no database, templates, chat, web or
  workflow code, and no cipher while there are no encryption keys; with keys, it does load
  the cipher (so the check can see it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

import starter  # noqa: F401  (importing it registers every command on the app)
from cli.app import app
from tests.conftest import ROOT, app_environment, free_port

# Runs starter.py as `python starter.py ARGS` would, and writes the loaded modules' names into
# the file PROBE_MODULES names as the process leaves (starter.py leaves through os._exit).
PROBE = """
import os, runpy, sys

def leave(status, exit_=os._exit):
    with open(os.environ["PROBE_MODULES"], "w") as file:
        file.write("\\n".join(sorted(sys.modules)))
    exit_(status)

os._exit = leave
sys.argv[0] = "starter.py"
runpy.run_path("starter.py", run_name="__main__")
"""

# No command that talks to Temporal only needs these, whatever it does.
NEVER = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "psycopg",
    "jinja2",
    "markdown",
    "apprise",
    "aiosmtplib",
    "fastapi",
    "starlette",
    "uvicorn",
    "activities",
    "workflows.onboarding",
    "workflows.everboarding",
    "reports.scorecard",
    "infra.roster",
)
# Answering --help or a usage error needs none of these either.
NOT_TO_PARSE = (
    *NEVER,
    "cryptography",
    "pydantic_settings",
    "dotenv",
    "email_validator",
    "temporalio.contrib.pydantic",
    "infra.settings",
    "cli.views",
)
# Of our models, what the options are made of: enums and bounds, no pydantic model.
MODELS_TO_PARSE = {"models", "models.enums", "models.limits", "models.wording"}

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
PARSER_REFUSES = [
    ["signal", "acme", "no-such-milestone", "--by", "csm-007"],
    ["task", "acme", "add-users", "--by", "csm-007"],  # without --done
    ["list", "--stage", "no-such-stage"],
    ["cancel", "acme", "--reason", "no-such-reason"],
    ["no-such-command"],
]


def loaded(env: dict[str, str], folder: Path, *args: str) -> tuple[set[str], str, int]:
    """The modules `starter.py ARGS` had loaded when it left, its stderr and its exit code."""
    modules = folder / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        env={**env, "PROBE_MODULES": str(modules)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert modules.exists(), f"starter.py {' '.join(args)} did not leave by os._exit:\n{result}"
    return set(modules.read_text().split()), result.stderr, result.returncode


def among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are, or are inside, one of the packages."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


@pytest.fixture
def unreachable(tmp_path: Path) -> dict[str, str]:
    """The processes' environment with a Temporal address nobody serves and no keys."""
    return app_environment(f"127.0.0.1:{free_port()}", tmp_path)


def test_the_probe_sees_every_command() -> None:
    assert {"signal", "status", "list", "incident", "report", "csm"} <= set(COMMANDS)


@pytest.mark.parametrize(
    "args",
    [["--help"], *([name, "--help"] for name in COMMANDS), ["csm", "add", "--help"]],
    ids=" ".join,
)
def test_help_loads_no_message_settings_database_or_cipher(
    args: list[str], unreachable: dict[str, str], tmp_path: Path
) -> None:
    modules, stderr, code = loaded(unreachable, tmp_path, *args)
    assert code == 0, stderr
    assert among(modules, NOT_TO_PARSE) == []
    assert {m for m in modules if m.partition(".")[0] == "models"} <= MODELS_TO_PARSE


@pytest.mark.parametrize("args", PARSER_REFUSES, ids=" ".join)
def test_usage_errors_load_no_message_settings_database_or_cipher(
    args: list[str], unreachable: dict[str, str], tmp_path: Path
) -> None:
    modules, stderr, code = loaded(unreachable, tmp_path, *args)
    assert code == 2, stderr
    assert among(modules, NOT_TO_PARSE) == []
    assert {m for m in modules if m.partition(".")[0] == "models"} <= MODELS_TO_PARSE


@pytest.mark.parametrize(
    "args",
    [
        ["status", "acme"],
        ["list"],
        ["signal", "acme", "contract-signed", "--by", "csm-007"],
        ["pause", "acme", "--by", "csm-007", "--reason", "waiting on their IT"],
        ["incident", "retry", "acme"],
        ["announce", "--feature", "Audit log", "--plans", "premium", "--summary", "Who did what"],
        ["churn", "acme", "--reason", "price"],
    ],
    ids=" ".join,
)
def test_a_temporal_command_loads_no_database_templates_or_cipher_without_keys(
    args: list[str], unreachable: dict[str, str], tmp_path: Path
) -> None:
    modules, stderr, code = loaded(unreachable, tmp_path, *args)
    assert code == 1 and "cannot reach Temporal" in stderr, stderr  # it got as far as connecting
    assert "infra.settings" in modules
    assert among(modules, (*NEVER, "cryptography")) == []


def test_with_encryption_keys_the_cipher_is_loaded_to_connect(
    unreachable: dict[str, str], tmp_path: Path
) -> None:
    keys = {"ENCRYPTION_KEYS": "k1=" + "A" * 43 + "="}  # 32 bytes
    modules, stderr, code = loaded({**unreachable, **keys}, tmp_path, "status", "acme")
    assert code == 1 and "cannot reach Temporal" in stderr, stderr
    assert "cryptography" in modules
    assert among(modules, NEVER) == []
