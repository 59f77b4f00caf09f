"""The HTTP API: the intake other systems feed (deals, CRM webhooks, events; signed) and the
reads and CSM actions of people's tools (bearer tokens). README: For integrators.

    .venv/bin/python api_server.py        (make run starts it on http://localhost:8000)

OpenAPI docs at /docs; /healthz says the process is up, /readyz that Temporal and the
database answer."""

from __future__ import annotations

import logging
import sys

import uvicorn

from api.app import build_app
from api.mapping import MappingError
from infra.logs import configure_logging
from infra.settings import SettingsError, load_settings

log = logging.getLogger("api")


def main() -> int:
    configure_logging("text")  # until the settings are read: they may be what is wrong
    try:
        settings = load_settings()
        configure_logging(settings.log_format, settings.log_level)
        app = build_app(settings)
    except (SettingsError, MappingError) as error:
        log.error("cannot start: %s", error)
        return 1
    log.info(
        "API on http://%s:%d (docs: /docs), signed sources: %s; tokens: %s",
        settings.api_host,
        settings.api_port,
        ", ".join(sorted(settings.webhook_secrets.get_secret_value()))
        or "every source, one secret",
        ", ".join(sorted(settings.api_tokens.get_secret_value())),
    )
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,  # the app logs each request with who made it (api/app.py)
        proxy_headers=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
