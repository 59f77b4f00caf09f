"""Settings (one pydantic-settings class) and the Temporal connection.

Both are read by the processes (worker, starter), never by workflow code.
"""

from __future__ import annotations

import json
import logging
import re
import stat
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, Secret, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.envconfig import ClientConfig
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
)

from infra.codec import KeyRingError, data_converter, parse_keys
from models.door import LOCALES, TIMEZONE_HINT, is_timezone

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data"


MIN_SECRET = 16  # characters of a webhook secret or API token


class Settings(BaseSettings):
    """Every knob, from the environment (or `.env`); see `.env.example`."""

    model_config = SettingsConfigDict(env_file=ROOT / ".env", extra="ignore")

    database_url: str = f"sqlite:///{DATA_DIR / 'onboarding.db'}"
    playbook_dir: Path = ROOT / "playbooks"
    roster_file: Path = ROOT / "playbooks" / "csms.toml"

    # Mail: without SMTP_HOST, messages are written as .eml files into OUTBOX_DIR.
    outbox_dir: Path = DATA_DIR / "outbox"
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # `starttls` (port 587) and `implicit` (465) verify the server's certificate and name
    # against the system's CAs (or SMTP_CA_FILE); `none` is for a relay on the same host or
    # network, and then a login is refused unless SMTP_ALLOW_PLAIN_LOGIN says otherwise.
    smtp_tls: Literal["starttls", "implicit", "none"] = "starttls"
    smtp_ca_file: Path | None = None
    smtp_allow_plain_login: bool = False
    mail_from: str = "Customer Success <success@example.com>"
    # The currency of a deal that names none (ISO 4217), as mails show its contract value.
    default_currency: str = "USD"
    # The time zone (IANA) of a deal that names none, and of the CS team's own mail: dates
    # and times in mail are shown in it.
    default_timezone: str = "UTC"
    # The language of mail to the CS team, the AE and CS ops (customer mail is in the deal's
    # `locale`): en or ja.
    internal_locale: str = "en"

    # Chat for internal people (escalations): apprise URLs, as a JSON list, e.g.
    # CHAT_URLS='["slack://T0/B0/XYZ", "msteams://..."]'. Empty: no chat.
    # The URLs carry the webhooks' tokens: kept secret, never printed.
    chat_urls: Secret[list[str]] = Secret([])

    # Runs the worker keeps in memory (about 300 KiB and 500 collected objects each, measured);
    # the others are replayed from their history when they next wake. What limits it is the
    # pause of a full garbage collection, not memory: README *Sizing a worker*.
    max_cached_workflows: int = Field(default=1000, ge=1, le=100_000)

    # The worker's Prometheus endpoint (http://HOST:METRICS_PORT/metrics); 0 turns it off.
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    # Worker logs: `text` for a terminal, `json` (one object per line) for a log pipeline.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Links put into customer mails.
    app_url: str = "https://app.example.com"
    academy_url: str = "https://academy.example.com"
    help_url: str = "https://help.example.com"
    exit_survey_url: str = "https://survey.example.com/exit"

    # Customer data in Temporal is encrypted (infra/codec.py) with these AES-256 keys:
    # `id=base64key[,older-id=base64key...]`, each the base64 of 32 random bytes
    # (`openssl rand -base64 32`); the first encrypts, every one decrypts (rotation).
    # Unset: the keys in ENCRYPTION_KEYS_FILE if it exists (`make run` writes it), else none
    # (payloads in plain text, and the worker says so).
    encryption_keys: SecretStr | None = None
    encryption_keys_file: Path = DATA_DIR / "encryption-keys"

    # The codec server (codec_server.py), which decrypts payloads for the Web UI and the
    # `temporal` CLI: its bearer token (required), address, and the Web UI origins allowed
    # to call it from a browser (comma-separated or a JSON list).
    codec_server_token: SecretStr | None = None
    codec_server_host: str = "0.0.0.0"
    codec_server_port: int = Field(default=8081, ge=1, le=65535)
    codec_cors_origins: Annotated[list[str], NoDecode] = ["http://localhost:8233"]

    # The HTTP API (api_server.py): where it listens; the secrets systems sign their writes
    # with (WEBHOOK_SECRET for every source, WEBHOOK_SECRETS as JSON {source: secret} per
    # source); the bearer tokens people's tools read and act with (API_TOKENS, JSON
    # {name: token}, the name being who acted); requests a second each source or token may
    # make (a burst of twice that is allowed); the CRM mapping files.
    api_host: str = "0.0.0.0"
    api_port: int = Field(default=8000, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    webhook_secrets: Secret[dict[str, str]] = Secret({})
    api_tokens: Secret[dict[str, str]] = Secret({})
    api_rate_limit: float = Field(default=50, gt=0, le=100_000)
    intake_dir: Path = ROOT / "intake"

    # The customer's portal page (served by the API): the address its links start with, the
    # secret they are signed with (PORTAL_SECRET, else the file `make run` writes), and how
    # long a link opens. The worker puts links in mails; the CLI prints them.
    portal_url: str = "http://localhost:8000"
    portal_secret: SecretStr | None = None
    portal_secret_file: Path = DATA_DIR / "portal-secret"
    portal_link_days: int = Field(default=30, ge=1, le=365)

    # Worker Deployment versioning (README: Deploying a new version). Off, workers poll
    # unversioned and every run goes to whichever polls (the tests, a bare `make worker`); on
    # (`make run`, compose), each worker polls as version WORKER_DEPLOYMENT.WORKER_BUILD_ID and
    # Temporal routes each run to the version its versioning behaviour says. The build id
    # defaults to the release version and the commit (`0.3.0+6b1d39d`, see default_build_id).
    worker_versioning: bool = False
    worker_deployment: str = "onboarding"
    worker_build_id: str | None = None

    def deployment_version(self) -> WorkerDeploymentVersion:
        """The version this checkout's workers poll as (the build id derived when unset)."""
        return WorkerDeploymentVersion(
            self.worker_deployment, self.worker_build_id or default_build_id(ROOT)
        )

    @field_validator("worker_deployment")
    @classmethod
    def _deployment_name(cls, value: str) -> str:
        # Temporal writes a version as `name.build_id` and splits it at the first dot.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}", value):
            raise ValueError(
                "must be 1 to 100 letters, digits, '-' or '_', starting with a letter or digit "
                "(no '.': Temporal joins the name and the build id with one)"
            )
        return value

    @field_validator("worker_build_id")
    @classmethod
    def _build_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # empty (the image's default): derived
        if not re.fullmatch(BUILD_ID, value):
            raise ValueError(
                "must be 1 to 128 letters, digits, '.', '+', '-' or '_', starting with a "
                "letter or digit, e.g. 0.4.0+6b1d39d"
            )
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _valid_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            parse_keys(value.get_secret_value())  # KeyRingError names ids, never keys
            return value
        return None  # empty: as if unset

    @field_validator("default_currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(
                "must be an ISO 4217 code of three capital letters, such as USD or EUR"
            )
        return value

    @field_validator("default_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if not is_timezone(value):
            raise ValueError(f"must be {TIMEZONE_HINT}")
        return value

    @field_validator("internal_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if value not in LOCALES:
            raise ValueError(f"must be one of {', '.join(LOCALES)}")
        return value

    @field_validator("codec_cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else text.split(",")
        return value

    @field_validator("codec_cors_origins")
    @classmethod
    def _valid_origins(cls, value: list[str]) -> list[str]:
        origins = [origin.strip().rstrip("/") for origin in value if origin.strip()]
        for origin in origins:
            scheme, sep, host = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not host or "/" in host:
                raise ValueError(
                    f"{origin!r} is not an origin like https://temporal-ui.example.com:8080 "
                    "(scheme, host and port only; no '*')"
                )
        return origins

    def key_ring(self) -> dict[str, bytes]:
        """The encryption keys in order (the first encrypts), or {} for no encryption."""
        if self.encryption_keys is not None:
            return parse_keys(self.encryption_keys.get_secret_value())
        text = _private_file(self.encryption_keys_file)
        return parse_keys(text) if text is not None else {}

    @field_validator("chat_urls", mode="before")
    @classmethod
    def _json_list(cls, value: object) -> object:
        # pydantic-settings decodes JSON only for plain complex types, not inside Secret.
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else []
            except json.JSONDecodeError:
                raise ValueError("must be a JSON list of apprise URLs") from None
        return value

    @field_validator("webhook_secrets", "api_tokens", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError:
                raise ValueError("must be a JSON object {name: secret}") from None
        return value

    @field_validator("webhook_secrets", "api_tokens")
    @classmethod
    def _strong_secrets(cls, value: Secret[dict[str, str]]) -> Secret[dict[str, str]]:
        for name, secret in value.get_secret_value().items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
                raise ValueError(f"{name!r} is not a name: lowercase letters, digits, hyphens")
            if len(secret) < MIN_SECRET:
                raise ValueError(f"the secret of {name!r} is shorter than {MIN_SECRET} characters")
        return value

    @field_validator("portal_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if scheme not in ("http", "https") or not sep or not rest:
            raise ValueError(f"{value!r} is not an address like https://onboarding.example.com")
        return value.rstrip("/")

    def portal_key(self) -> str | None:
        """The portal links' secret, or None: no links (mails go without one)."""
        if self.portal_secret is not None:
            return self.portal_secret.get_secret_value()
        text = _private_file(self.portal_secret_file)
        return (text.strip() or None) if text is not None else None

    @field_validator("webhook_secret", "portal_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # empty: as if unset
        if len(value.get_secret_value()) < MIN_SECRET:
            raise ValueError(f"shorter than {MIN_SECRET} characters")
        return value

    @model_validator(mode="after")
    def _no_plain_login(self) -> Settings:
        if (
            self.smtp_host
            and self.smtp_username
            and self.smtp_tls == "none"
            and not self.smtp_allow_plain_login
        ):
            raise ValueError(
                "SMTP_USERNAME with SMTP_TLS=none would send the password in clear: use "
                "SMTP_TLS=starttls or implicit, or set SMTP_ALLOW_PLAIN_LOGIN=true for a "
                "relay on this host"
            )
        return self


# A build id as the settings accept it: what a version and a commit make (`0.4.0+6b1d39d`),
# nothing that needs quoting in a visibility query or a shell.
BUILD_ID = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}"


@cache
def default_build_id(root: Path) -> str:
    """The release version in `root`'s pyproject.toml, with the commit checked out when `root`
    is a git checkout: `0.3.0+6b1d39d`. The image has no .git: its build passes
    WORKER_BUILD_ID instead (Dockerfile). Uncommitted edits do not change it: a worker run
    from a modified tree polls as the commit it was modified from."""
    version = str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])
    if not (root / ".git").exists():  # a worktree's .git is a file
        return version
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=7", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version  # no git on this machine, or no commit yet
    return f"{version}+{commit}" if commit else version


def _private_file(path: Path) -> str | None:
    """A secret file's text (None: no such file); refused when others may read it."""
    if not path.exists():
        return None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyRingError(f"{path} is readable by others: `chmod 600 {path}`")
    return path.read_text()


class SettingsError(Exception):
    """Invalid settings, each named by its environment variable."""


# Never shown in an error: what they hold is the secret.
SECRET_SETTINGS = {
    "smtp_password",
    "encryption_keys",
    "codec_server_token",
    "webhook_secret",
    "webhook_secrets",
    "portal_secret",
    "api_tokens",
    "chat_urls",
    "database_url",  # it can carry a password
}


def load_settings() -> Settings:
    """The settings, or a SettingsError naming every variable that is wrong and why (secrets
    by name only)."""
    try:
        settings = Settings()
    except ValidationError as error:
        problems = []
        for e in error.errors():
            field = str(e["loc"][0]) if e["loc"] else ""
            name = field.upper() or "settings"
            secret = field in SECRET_SETTINGS or not isinstance(e["input"], str)
            shown = "(hidden)" if secret or not field else repr(e["input"])
            problems.append(f"{name}={shown}: {e['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
    try:
        settings.key_ring()  # the key file too, so a bad one stops a process at its start
    except KeyRingError as error:
        raise SettingsError(f"invalid settings: ENCRYPTION_KEYS_FILE: {error}") from None
    return settings


def worker_runtime(metrics_port: int) -> Runtime:
    """The worker's Temporal runtime: the SDK core's own log lines go through Python logging
    (so LOG_FORMAT=json covers them too), and with a port, its metrics and the workflows'
    counters are served for Prometheus on every interface."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=LoggingConfig.default.filter,
                forwarding=LogForwardingConfig(
                    logger=logging.getLogger("temporalio.core"), append_target_to_name=False
                ),
            ),
            metrics=PrometheusConfig(bind_address=f"0.0.0.0:{metrics_port}")
            if metrics_port
            else None,
        )
    )


async def connect_temporal(
    runtime: Runtime | None = None, settings: Settings | None = None
) -> Client:
    """Connect as the SDK's environment config says (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
    TEMPORAL_API_KEY, TLS, profiles in temporal.toml), so Temporal Cloud needs no code; with
    encryption keys in the settings, every payload is encrypted (infra/codec.py)."""
    settings = settings or load_settings()
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    try:
        return await Client.connect(
            **config, data_converter=data_converter(settings.key_ring()), runtime=runtime
        )
    except RuntimeError as error:
        raise TemporalUnreachable(str(config["target_host"]), str(error)) from None


class TemporalUnreachable(RuntimeError):
    """The Temporal server could not be reached: one line with the address tried, what went
    wrong in words, and what to check (the SDK's own message is a Rust error chain)."""

    def __init__(self, address: str, detail: str) -> None:
        self.address = address
        self.detail = detail
        super().__init__(
            f"cannot reach Temporal at {address}: {connection_problem(detail)}; check that "
            "the server is up (`make run` starts one) and that TEMPORAL_ADDRESS (or your "
            "Temporal profile) names it"
        )


# What the SDK's connection errors say, in words; the first that matches the message wins.
_CONNECTION_PROBLEMS = (
    (("ConnectionRefused", "Connection refused"), "nothing is listening there"),
    (("dns error", "lookup address"), "that host name is not known"),
    (("timed out", "Timeout", "deadline has elapsed"), "no answer in time"),
    (("certificate", "InvalidCertificate", "tls", "TLS"), "the TLS handshake failed"),
    (
        ("Unauthenticated", "PermissionDenied", "API key", "api key"),
        "the server refused our credentials (TEMPORAL_API_KEY or the TLS client certificate)",
    ),
    (
        ("ConnectionReset", "grpc-status header missing", "Unimplemented", "transport error"),
        "something answered there that is not a Temporal server",
    ),
)


def connection_problem(detail: str) -> str:
    for needles, words in _CONNECTION_PROBLEMS:
        if any(needle in detail for needle in needles):
            return words
    # Unknown: the SDK's first words, without the Rust error chain behind them.
    first = detail.removeprefix("Failed client connect: ").split("(", 1)[0].split("{", 1)[0]
    return first.strip(" :,") or "the connection failed"
