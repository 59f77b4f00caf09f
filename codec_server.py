"""The codec server: decrypts (and encrypts) payloads for the Temporal Web UI and the `temporal`
CLI, with the keys the worker uses, so ops can read a run's customer data where they need it.

    .venv/bin/python codec_server.py        (make run starts it on http://localhost:8081)

Temporal's codec server protocol: `POST /decode` and `POST /encode` take and answer
`{"payloads": [{"metadata": {...}, "data": "<base64>"}]}` (protobuf JSON); the Web UI adds
`X-Namespace`. Every call needs the token CODEC_SERVER_TOKEN, sent one of two ways:

- `Authorization: Bearer <token>`: the `temporal` CLI (`--codec-auth "Bearer <token>"`),
  scripts;
- a session cookie, for the Web UI in a browser: the UI cannot send a bearer token of ours (its
  "pass the user access token" sends its own OIDC token, and only over https), but with
  "Include cross-origin credentials" it sends cookies. Sign in once at `/login` (the token,
  pasted into a form, never in a URL); the cookie is HttpOnly, lasts 8 hours, and is taken
  only from the origins in CODEC_CORS_ORIGINS (so another site cannot use it).

Browsers may call it only from CODEC_CORS_ORIGINS (the Web UI's origin); `/healthz` answers
without a token.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import sys
import time
from urllib.parse import parse_qs

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from infra.codec import DecryptionError, EncryptionCodec
from infra.logs import configure_logging
from infra.settings import Settings, SettingsError, load_settings

log = logging.getLogger("codec_server")

COOKIE = "codec_session"
SESSION_SECONDS = 8 * 3600
MAX_BODY = 8 * 1024 * 1024  # a batch of payloads; Temporal refuses blobs over 2 MB anyway


class Sessions:
    """Browser sessions as signed expiry times: `<expires>.<hmac(token, expires)>`. Nothing
    is stored, and a new token ends every session."""

    def __init__(self, token: str) -> None:
        self._key = hashlib.sha256(b"codec-session:" + token.encode()).digest()

    def _sign(self, expires: int) -> str:
        return hmac.new(self._key, str(expires).encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float) -> str:
        expires = int(now) + SESSION_SECONDS
        return f"{expires}.{self._sign(expires)}"

    def valid(self, cookie: str, now: float) -> bool:
        expires, _, signature = cookie.partition(".")
        if not expires.isdigit() or int(expires) < now:
            return False
        return hmac.compare_digest(signature, self._sign(int(expires)))


def build_app(settings: Settings) -> FastAPI:
    """The app (the tests run it with uvicorn as the script does)."""
    keys = settings.key_ring()
    if not keys:
        raise SettingsError(
            "ENCRYPTION_KEYS is not set (nor ENCRYPTION_KEYS_FILE present): nothing to decode"
        )
    if settings.codec_server_token is None or len(settings.codec_server_token) < 16:
        raise SettingsError(
            "CODEC_SERVER_TOKEN must be set, at least 16 characters "
            "(e.g. `openssl rand -base64 32`)"
        )
    token = settings.codec_server_token.get_secret_value()
    codec = EncryptionCodec(keys)
    sessions = Sessions(token)
    origins = set(settings.codec_cors_origins)

    def authorized(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode(), token.encode()
        ):
            return
        cookie = request.cookies.get(COOKIE)
        # A cookie rides along with any request the browser makes; only the Web UI's origin
        # may spend it.
        if (
            cookie
            and request.headers.get("origin") in origins
            and sessions.valid(cookie, time.time())
        ):
            return
        raise HTTPException(
            status_code=401,
            detail="codec server: send `Authorization: Bearer <CODEC_SERVER_TOKEN>`, or sign "
            "in at /login and let the Web UI include cross-origin credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )

    app = FastAPI(title="Onboarding codec server", docs_url=None, redoc_url=None)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=sorted(origins),
        allow_credentials=True,
        allow_methods=["POST"],
        allow_headers=["Content-Type", "X-Namespace", "Authorization"],
        max_age=600,
    )

    async def payloads_of(request: Request) -> Payloads:
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            raise HTTPException(413, detail=f"codec server: more than {MAX_BODY} bytes")
        body = await request.body()
        try:
            return json_format.Parse(body, Payloads())
        except json_format.ParseError as error:
            raise HTTPException(
                400, detail=f'codec server: expected {{"payloads": [...]}}: {error}'
            ) from None

    def answer(payloads: Payloads) -> Response:
        return Response(json_format.MessageToJson(payloads), media_type="application/json")

    # The body is read by hand: it is protobuf JSON, not a pydantic model.
    @app.post("/decode", dependencies=[Depends(authorized)])
    async def decode(request: Request) -> Response:
        payloads = await payloads_of(request)
        try:
            return answer(Payloads(payloads=await codec.decode(payloads.payloads)))
        except DecryptionError as error:
            raise HTTPException(400, detail=f"codec server: {error}") from None

    @app.post("/encode", dependencies=[Depends(authorized)])
    async def encode(request: Request) -> Response:
        payloads = await payloads_of(request)
        return answer(Payloads(payloads=await codec.encode(payloads.payloads)))

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "encrypts_with": codec.key_id})

    @app.get("/login", response_class=HTMLResponse)
    async def login_form() -> HTMLResponse:
        return HTMLResponse(_page(_FORM))

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> HTMLResponse:
        form = parse_qs((await request.body()).decode(errors="replace"))
        given = (form.get("token") or [""])[0].strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HTMLResponse(_page("<p>Wrong token.</p>" + _FORM), status_code=401)
        endpoint = html.escape(str(request.base_url).rstrip("/"))
        response = HTMLResponse(_page(_SIGNED_IN.format(endpoint=endpoint)))
        secure = request.url.scheme == "https"
        response.set_cookie(
            COOKIE,
            sessions.issue(time.time()),
            max_age=SESSION_SECONDS,
            httponly=True,
            secure=secure,
            # Over https the Web UI may live on another site (SameSite=None needs Secure);
            # the origin check above keeps other sites out either way.
            samesite="none" if secure else "strict",
        )
        return response

    return app


_FORM = """<form method="post" action="login">
<label>Codec server token (CODEC_SERVER_TOKEN)
<input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Sign in</button></form>"""

_SIGNED_IN = """<p>Signed in for 8 hours: the Web UI can decode in this browser.</p>
<p>In the Web UI, open <b>Codec Server</b> (top right), choose <i>Use my browser setting</i>,
set the endpoint to <code>{endpoint}</code> and tick
<i>Include cross-origin credentials</i>.</p>"""


def _page(body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Codec server</title></head>"
        f"<body><h1>Onboarding codec server</h1>{body}</body></html>"
    )


def main() -> int:
    configure_logging("text")  # until the settings are read: they may be what is wrong
    try:
        settings = load_settings()
        configure_logging(settings.log_format, settings.log_level)
        app = build_app(settings)
    except SettingsError as error:
        log.error("cannot start: %s", error)
        return 1
    log.info(
        "codec server on http://%s:%d (browsers from %s)",
        settings.codec_server_host,
        settings.codec_server_port,
        ", ".join(settings.codec_cors_origins) or "nowhere",
    )
    uvicorn.run(
        app,
        host=settings.codec_server_host,
        port=settings.codec_server_port,
        log_level=settings.log_level.lower(),
        access_log=False,  # what ops decode is no one's business but theirs
        proxy_headers=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
