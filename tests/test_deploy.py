"""The production stack, checked by structure (no container engine runs on our machines):
docker-compose.yml, the Dockerfile and .env.example agree with what the code reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from infra.settings import Settings
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
# What the app reads: its settings, and the Temporal SDK's environment config.
KNOWN = {name.upper() for name in Settings.model_fields} | {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_PROFILE",
    "TEMPORAL_TLS",
}


def test_every_part_of_the_stack_is_there() -> None:
    assert {
        "temporal-db",
        "temporal",
        "temporal-ui",
        "app-db",
        "mailpit",
        "migrate",
        "worker",
    } <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name: str) -> None:
    service = SERVICES[name]
    if "build" in service:
        return  # the project's own image
    image = service["image"]
    assert re.fullmatch(r"[\w./-]+:v?\d[\w.-]*", image), f"{name}: {image} is not pinned"


@pytest.mark.parametrize("name", ["temporal-db", "temporal", "app-db", "mailpit", "worker"])
def test_long_running_services_have_health_checks(name: str) -> None:
    check = SERVICES[name]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] >= 3


def test_the_worker_starts_only_on_a_healthy_migrated_stack() -> None:
    worker = SERVICES["worker"]
    assert worker["command"] == ["python", "worker.py"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for dependency in ("temporal", "app-db", "mailpit"):
        assert worker["depends_on"][dependency]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert "9464" in str(worker["healthcheck"]["test"])


def test_the_worker_gets_every_setting_it_needs_and_only_known_ones() -> None:
    env = SERVICES["worker"]["environment"]
    assert {"TEMPORAL_ADDRESS", "DATABASE_URL", "SMTP_HOST", "SMTP_PORT", "METRICS_PORT"} <= set(
        env
    )
    assert (
        env["DATABASE_URL"].startswith("postgresql://") and "@app-db:5432/" in env["DATABASE_URL"]
    )
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert set(env) <= KNOWN, f"unknown to the app: {set(env) - KNOWN}"


def test_env_example_names_only_settings_the_app_or_compose_reads() -> None:
    compose_text = (ROOT / "docker-compose.yml").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    for name in names:
        assert name in KNOWN or f"${{{name}" in compose_text, f"{name} is read by nothing"
    assert {"DATABASE_URL", "SMTP_HOST", "METRICS_PORT", "LOG_FORMAT"} <= names


def test_the_image_runs_the_worker_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim$", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert 'CMD ["python", "worker.py"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".data", ".git"} <= set(ignored)


def test_the_app_image_is_shared_by_migrate_and_worker() -> None:
    assert SERVICES["migrate"]["image"] == SERVICES["worker"]["image"]
    assert SERVICES["migrate"]["build"] == "." == SERVICES["worker"]["build"]


def test_compose_file_is_where_the_readme_says() -> None:
    assert "docker compose up" in (ROOT / "README.md").read_text()
    assert Path(ROOT / ".env.example").exists()
