"""Settings (one pydantic-settings class) and the Temporal connection.

Both are read by the processes (worker, starter), never by workflow code.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, Secret, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
)

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data"


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

    # Chat for internal people (escalations): apprise URLs, as a JSON list, e.g.
    # CHAT_URLS='["slack://T0/B0/XYZ", "msteams://..."]'. Empty: no chat.
    # The URLs carry the webhooks' tokens: kept secret, never printed.
    chat_urls: Secret[list[str]] = Secret([])

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


# Variables whose values are never echoed in an error.
SECRET_WORDS = ("PASSWORD", "TOKEN", "KEY", "CHAT_URLS", "DATABASE_URL")


class SettingsError(Exception):
    """Invalid settings, each named by its environment variable."""


def load_settings() -> Settings:
    """The settings, or a SettingsError naming every variable that is wrong and why."""
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for e in error.errors():
            name = str(e["loc"][0]).upper() if e["loc"] else "settings"
            secret = any(word in name for word in SECRET_WORDS)
            shown = "(hidden)" if secret or not isinstance(e["input"], str) else repr(e["input"])
            problems.append(f"{name}={shown}: {e['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


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


async def connect_temporal(runtime: Runtime | None = None) -> Client:
    """Connect as the SDK's environment config says (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
    TEMPORAL_API_KEY, TLS, profiles in temporal.toml), so Temporal Cloud needs no code."""
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    return await Client.connect(**config, data_converter=pydantic_data_converter, runtime=runtime)
