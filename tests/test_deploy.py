"""The production stack, checked by structure (no container engine runs on our machines):
docker-compose.yml, the Dockerfile and .env.example agree with what the code reads, compose
refuses to start without its secrets, and only what a person opens in a browser is published,
on loopback."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from infra.settings import Settings
from tests.conftest import ROOT

COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
# The ones that run the project's image.
APP_SERVICES = ("migrate", "replay-check", "worker", "codec-server", "api")
# What the app reads: its settings, and the Temporal SDK's environment config.
KNOWN = {name.upper() for name in Settings.model_fields} | {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_PROFILE",
    "TEMPORAL_TLS",
}
READ_BY_THE_APP = KNOWN

# The secrets compose must be given: no defaults, it stops without them.
REQUIRED_SECRETS = (
    "TEMPORAL_DB_PASSWORD",
    "APP_DB_PASSWORD",
    "ENCRYPTION_KEYS",
    "CODEC_SERVER_TOKEN",
    "WEBHOOK_SECRET",
    "API_TOKENS",
    "PORTAL_SECRET",
)
SECRET_NAME = re.compile(r"PASSWORD|PWD|TOKEN|SECRET|KEYS?$|CHAT_URLS")


class ComposeRefused(Exception):
    """What `docker compose` prints when a required variable is missing."""


_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation of `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
    `${VAR:?message}` and `${VAR?message}` (the forms this file uses), over the parsed file."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        given = env.get(name)
        missing = given is None or (op.startswith(":") and given == "")
        if op.endswith("?") and missing:
            raise ComposeRefused(f"required variable {name} is missing a value: {arg}")
        if op.endswith("-") and missing:
            return arg
        return given or ""

    return _VARIABLE.sub(one, value)


SECRETS = {
    "TEMPORAL_DB_PASSWORD": "t-db-secret",
    "APP_DB_PASSWORD": "app-db-secret",
    "ENCRYPTION_KEYS": "k1=" + "A" * 43 + "=",
    "CODEC_SERVER_TOKEN": "codec-token-secret",
    "WEBHOOK_SECRET": "webhook-secret-0123456789",
    "API_TOKENS": '{"ops": "api-token-0123456789"}',
    "PORTAL_SECRET": "portal-secret-0123456789",
}


def rendered(env: Mapping[str, str] = SECRETS) -> dict[str, Any]:
    """The services as compose would run them with this .env."""
    services: dict[str, Any] = interpolate(COMPOSE, env)["services"]
    return services


def test_every_part_of_the_stack_is_there() -> None:
    assert {
        "temporal-db",
        "temporal",
        "temporal-ui",
        "codec-server",
        "api",
        "app-db",
        "mailpit",
        "migrate",
        "replay-check",
        "worker",
    } <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name: str) -> None:
    service = SERVICES[name]
    if "build" in service:
        return  # the project's own image
    image = service["image"]
    assert re.fullmatch(r"[\w./-]+:v?\d[\w.-]*", image), f"{name}: {image} is not pinned"


@pytest.mark.parametrize(
    "name", ["temporal-db", "temporal", "app-db", "mailpit", "worker", "codec-server", "api"]
)
def test_long_running_services_have_health_checks(name: str) -> None:
    check = SERVICES[name]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] >= 3


@pytest.mark.parametrize("name", REQUIRED_SECRETS)
@pytest.mark.parametrize("given", ["unset", "empty"])
def test_compose_refuses_to_start_without_each_secret(name: str, given: str) -> None:
    env = dict(SECRETS)
    if given == "unset":
        del env[name]
    else:
        env[name] = ""
    with pytest.raises(
        ComposeRefused, match=rf"{name} .*set {name} in \.env \(see \.env\.example\)"
    ):
        rendered(env)


def test_no_secret_has_a_default_value() -> None:
    for match in _VARIABLE.finditer(COMPOSE_TEXT):
        if SECRET_NAME.search(match["name"]) and (match["op"] or "").endswith("-"):
            assert match["arg"] in ("", "[]"), f"{match[0]}: a secret with a default"


def test_each_secret_reaches_only_the_services_that_need_it() -> None:
    services = rendered()
    holders = {
        secret: {
            name
            for name, service in services.items()
            if value in str(service.get("environment", {}))
        }
        for secret, value in SECRETS.items()
    }
    assert holders == {
        "TEMPORAL_DB_PASSWORD": {"temporal-db", "temporal"},
        "APP_DB_PASSWORD": {"app-db", "migrate", "worker", "api"},
        "ENCRYPTION_KEYS": {"worker", "codec-server", "api", "replay-check"},
        "CODEC_SERVER_TOKEN": {"codec-server"},
        "WEBHOOK_SECRET": {"api"},
        "API_TOKENS": {"api"},
        "PORTAL_SECRET": {"api", "worker"},
    }
    url = services["worker"]["environment"]["DATABASE_URL"]
    assert url == "postgresql://onboarding:app-db-secret@app-db:5432/onboarding"
    assert services["migrate"]["environment"]["DATABASE_URL"] == url


def test_only_what_a_browser_opens_is_published_and_only_on_loopback() -> None:
    published = {
        name: service["ports"] for name, service in rendered().items() if service.get("ports")
    }
    assert published == {
        "temporal-ui": ["127.0.0.1:8080:8080"],
        "codec-server": ["127.0.0.1:8081:8081"],
        "api": ["127.0.0.1:8000:8000"],
        "mailpit": ["127.0.0.1:8025:8025"],
    }
    # Temporal's frontend, the databases and the metrics: on the compose network only.
    assert SERVICES["worker"]["expose"] == ["9464"]


def test_the_web_ui_decodes_through_the_codec_server_from_its_own_origin() -> None:
    services = rendered()
    ui, codec = services["temporal-ui"]["environment"], services["codec-server"]
    # The browser calls the codec server at its published address, with the sign-in cookie.
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "http://localhost:8081"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert codec["command"] == ["python", "codec_server.py"]
    assert codec["environment"]["CODEC_SERVER_PORT"] == "8081"
    assert codec["ports"] == ["127.0.0.1:8081:8081"]
    assert "http://localhost:8081/healthz" in str(codec["healthcheck"]["test"])
    # Browsers may call it from the UI's published origin, and only from there.
    assert codec["environment"]["CODEC_CORS_ORIGINS"] == "http://localhost:8080"
    assert "127.0.0.1:8080:8080" in services["temporal-ui"]["ports"]


def test_a_reverse_proxy_moves_the_origins_without_editing_the_file() -> None:
    env = dict(
        SECRETS,
        CODEC_CORS_ORIGINS="https://temporal.example.com",
        CODEC_ENDPOINT="https://temporal-codec.example.com",
    )
    services = rendered(env)
    assert services["codec-server"]["environment"]["CODEC_CORS_ORIGINS"] == (
        "https://temporal.example.com"
    )
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"] == (
        "https://temporal-codec.example.com"
    )


def test_the_worker_starts_only_on_a_healthy_migrated_stack() -> None:
    worker = SERVICES["worker"]
    assert worker["command"] == ["python", "worker.py"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for dependency in ("temporal", "app-db", "mailpit"):
        assert worker["depends_on"][dependency]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert "9464" in str(worker["healthcheck"]["test"])


def test_a_new_image_replays_the_clusters_runs_before_its_workers_start() -> None:
    import starter  # noqa: F401  (registers every command on the app)
    from cli.app import app

    services = rendered()
    gate, worker = services["replay-check"], services["worker"]
    assert worker["depends_on"]["replay-check"]["condition"] == "service_completed_successfully"
    # A one-shot run of the CLI command, on the workers' image, against the same cluster.
    assert gate["command"] == ["python", "starter.py", "replay-check"]
    assert "replay-check" in typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert gate["restart"] == "no" and "healthcheck" not in gate and "ports" not in gate
    assert gate["depends_on"]["temporal"]["condition"] == "service_healthy"
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "ENCRYPTION_KEYS"):
        # The histories are encrypted with the workers' keys: the gate decodes with them.
        assert gate["environment"][name] == worker["environment"][name], name


def test_the_worker_gets_every_setting_it_needs() -> None:
    env = rendered()["worker"]["environment"]
    assert {
        "TEMPORAL_ADDRESS",
        "DATABASE_URL",
        "ENCRYPTION_KEYS",
        "SMTP_HOST",
        "SMTP_PORT",
        "SMTP_TLS",
        "METRICS_PORT",
    } <= set(env)
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    # Staging mails through mailpit, a relay on the compose network that speaks no TLS.
    assert (env["SMTP_HOST"], env["SMTP_PORT"], env["SMTP_TLS"]) == ("mailpit", "1025", "none")
    # No login unless a real relay's credentials are given.
    assert env["SMTP_USERNAME"] == env["SMTP_PASSWORD"] == ""


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_get_only_settings_the_app_reads(name: str) -> None:
    env = SERVICES[name]["environment"]
    assert set(env) <= READ_BY_THE_APP, f"unknown to the app: {set(env) - READ_BY_THE_APP}"


def test_env_example_names_only_settings_the_app_or_compose_reads() -> None:
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    for name in names:
        assert name in READ_BY_THE_APP or f"${{{name}" in COMPOSE_TEXT, f"{name} is read by nothing"
    assert {"DATABASE_URL", "SMTP_HOST", "SMTP_TLS", "METRICS_PORT", "LOG_FORMAT"} <= names


def test_env_example_lists_every_required_secret_empty_with_how_to_make_it() -> None:
    text = (ROOT / ".env.example").read_text()
    for name in REQUIRED_SECRETS:
        assert re.search(rf"^{name}=$", text, re.M), f"{name} is not listed empty"
        before = text[: text.index(f"\n{name}=")]
        assert "python3 -c" in before.rsplit("\n\n", 1)[-1], f"{name}: no way to make it"


def test_the_image_runs_as_a_non_root_user_from_the_lock_with_no_secret_inside() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim$", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert 'CMD ["python", "worker.py"]' in dockerfile
    assert re.search(r"^RUN pip install --require-hashes -r requirements\.lock$", dockerfile, re.M)
    for line in re.findall(r"^(?:ENV|ARG) .*$", dockerfile, re.M):
        assert not SECRET_NAME.search(line), f"a secret baked into the image: {line}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".data", ".git"} <= set(ignored)


def test_the_app_image_is_shared_by_every_app_service() -> None:
    for name in APP_SERVICES:
        assert SERVICES[name]["image"] == "onboarding-orchestrator:local"
        assert SERVICES[name]["build"] == "."


def test_compose_file_is_where_the_readme_says() -> None:
    assert "docker compose up" in (ROOT / "README.md").read_text()
    assert Path(ROOT / ".env.example").exists()


def test_the_workers_cache_is_sized_by_a_setting_the_compose_stack_passes() -> None:
    env = rendered()["worker"]["environment"]
    assert env["MAX_CACHED_WORKFLOWS"] == "1000"


def test_the_workers_poll_as_a_version_of_the_deployment() -> None:
    env = rendered()["worker"]["environment"]
    # Off with the bundled server (it predates deployments), on when .env says so.
    assert env["WORKER_VERSIONING"] == "false"
    versioned = rendered(SECRETS | {"WORKER_VERSIONING": "true"})["worker"]["environment"]
    assert versioned["WORKER_VERSIONING"] == "true"
    assert env["WORKER_DEPLOYMENT"] == "onboarding"
    assert (
        rendered(SECRETS | {"WORKER_DEPLOYMENT": "cs"})["worker"]["environment"][
            "WORKER_DEPLOYMENT"
        ]
        == "cs"
    )
    # The build id comes with the image (the build is told the commit: it has no .git).
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ARG WORKER_BUILD_ID=""$', dockerfile, re.M)
    assert re.search(r"^ENV WORKER_BUILD_ID=\$\{WORKER_BUILD_ID\}$", dockerfile, re.M)
    assert "WORKER_BUILD_ID" not in env
