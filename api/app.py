"""The HTTP API's app: its routes (api/intake.py, api/accounts.py), health, and how every
refusal becomes one JSON shape: `{"detail": "<one line, the CLI's words>"}`, plus
`"errors": [{"field", "message"}]` for a 422."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from temporalio.service import RPCError, RPCStatusCode

from api import accounts, intake, schema
from api.errors import Unprocessable
from api.mapping import MappingError, load_mappings
from api.state import ApiState, state
from infra.settings import Settings, SettingsError
from portal import pages
from service.errors import ServiceError

log = logging.getLogger("api")
# What a later retry may get past: Temporal or the network is down, slow or busy.
_TRY_AGAIN = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}


def build_app(settings: Settings) -> FastAPI:
    """The app (the tests run it with uvicorn as api_server.py does). Refuses to exist
    without a secret to check writes with and a token to check reads with (SettingsError),
    or with a broken mapping file (MappingError)."""
    if settings.webhook_secret is None and not settings.webhook_secrets.get_secret_value():
        raise SettingsError("set WEBHOOK_SECRET (or WEBHOOK_SECRETS): nothing could sign a write")
    if not settings.api_tokens.get_secret_value():
        raise SettingsError('set API_TOKENS, e.g. {"ops": "<32 random characters>"}')
    # FastAPI's own /docs loads Swagger UI from a CDN: a blank page wherever the browser
    # cannot reach it. This serves the same files from the API.
    app = FastAPIOffline(
        redoc_url=None,
        title="Onboarding orchestrator API",
        version="1",
        description="Deals and facts from other systems (signed), reads and CSM actions "
        "(bearer token). README: For integrators.",
    )
    # Every mapping file is checked now: a broken one stops the API at its start, naming the
    # file and key, instead of answering the CRM's first webhook with a 500.
    load_mappings(settings.intake_dir)
    app.state.api = ApiState(settings)
    app.include_router(intake.router)
    app.include_router(accounts.router)
    app.include_router(pages.router)
    app.mount(pages.STATIC_URL, StaticFiles(directory=pages.STATIC), name="portal-static")
    app.add_exception_handler(pages.Refused, pages.refused_page)
    app.add_exception_handler(pages.Unreachable, pages.unreachable_page)
    schema.install(app)
    _health(app)
    _refusals(app)
    app.middleware("http")(_access_log)
    return app


def _health(app: FastAPI) -> None:
    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Temporal and the database answer")
    async def readyz(request: Request) -> JSONResponse:
        # Anyone may ask: the answer names what is missing, the log says why.
        checks = {
            "temporal": await _temporal_ready(state(request)),
            "database": await asyncio.to_thread(_database_ready, state(request).settings),
        }
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(checks, status_code=200 if ready else 503)


async def _temporal_ready(api: ApiState) -> str:
    try:
        client = await api.client()
        await client.service_client.check_health()
    except (ServiceError, RPCError) as error:
        log.warning("not ready: Temporal: %s", getattr(error, "message", error))
        return "unreachable"
    return "ok"


def _database_ready(settings: Settings) -> str:
    from sqlalchemy.exc import OperationalError

    from infra.db import SchemaError, check_schema, make_engine

    engine = make_engine(settings.database_url)
    try:
        check_schema(engine)
    except SchemaError as error:
        log.warning("not ready: database: %s", error)
        return "not migrated"
    except OperationalError as error:
        log.warning("not ready: database: %s", type(error.orig).__name__)
        return "unreachable"
    finally:
        engine.dispose()
    return "ok"


def _refusals(app: FastAPI) -> None:
    def detail(status: int, message: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"detail": message, **extra}, status_code=status)

    @app.exception_handler(ServiceError)
    async def service(_: Request, error: ServiceError) -> JSONResponse:
        return detail(error.status, error.message)

    @app.exception_handler(Unprocessable)
    async def unprocessable(_: Request, error: Unprocessable) -> JSONResponse:
        errors = [{"field": field, "message": message} for field, message in error.errors]
        return detail(422, str(error), errors=errors)

    @app.exception_handler(RequestValidationError)
    async def parameters(_: Request, error: RequestValidationError) -> JSONResponse:
        pairs = [
            (".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), e["msg"])
            for e in error.errors()
        ]
        return await unprocessable(_, Unprocessable(pairs))

    @app.exception_handler(RPCError)
    async def temporal(_: Request, error: RPCError) -> JSONResponse:
        if error.status in _TRY_AGAIN:
            return detail(503, f"Temporal answered: {error.message}; try again later")
        log.error("Temporal refused a call: %s (%s)", error.message, error.status)
        return detail(500, "Temporal refused the call; the API's log says why")

    @app.exception_handler(MappingError)
    async def mapping(request: Request, error: MappingError) -> JSONResponse:
        log.error("a mapping file is broken: %s", error)
        return detail(500, "this source's mapping file is broken; the API's log says where")

    @app.exception_handler(HTTPException)
    async def http(_: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": error.detail}, status_code=error.status_code, headers=error.headers
        )


async def _access_log(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """One line a request: who (the token's name or the signing source), what, the answer.
    The path holds account ids, never customer data, and a portal link's token is left out
    (it opens the page); bodies are never logged. The portal's pages get their headers."""
    started = time.perf_counter()
    response = await call_next(request)
    path = request.url.path
    if path.startswith("/portal/"):
        response.headers.update(pages.HEADERS)
        path = "/portal/<link>" + "".join("/" + part for part in path.split("/")[3:])
    log.info(
        "%s %s %s %d %.0f ms",
        getattr(request.state, "who", "-"),
        request.method,
        path,
        response.status_code,
        (time.perf_counter() - started) * 1000,
    )
    return response
