"""The codec server as the Web UI and the `temporal` CLI call it: `codec_server.py` run as ops
run it, spoken to over HTTP (httpx)."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.common.v1 import Payload

from infra.codec import EncryptionCodec, new_key_line, parse_keys
from tests.conftest import ROOT, app_environment, codec_server_running

UI = "http://127.0.0.1:8233"
TOKEN = "test-token-0123456789abcdef"
NEW, OLD = new_key_line("new"), new_key_line("old")


@pytest.fixture(scope="module")
def codec_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("codec")
    env = app_environment("127.0.0.1:7233", folder) | {
        "ENCRYPTION_KEYS": f"{NEW},{OLD}",
        "CODEC_SERVER_TOKEN": TOKEN,
        "CODEC_CORS_ORIGINS": UI,
    }
    with codec_server_running(env, folder / "codec.log") as url:
        yield url


def plain(text: str) -> dict:
    """A payload as the UI and the CLI send it: protobuf JSON, bytes in base64."""
    return {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(f'"{text}"'.encode()).decode(),
    }


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_cli_decodes_with_the_bearer_token_under_every_key_of_the_ring(
    codec_url: str,
) -> None:
    encoded = httpx.post(
        f"{codec_url}/encode", json={"payloads": [plain("kenji@acme.example")]}, headers=bearer()
    )
    assert encoded.status_code == 200, encoded.text
    payload = encoded.json()["payloads"][0]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
    assert base64.b64decode(payload["metadata"]["encryption-key-id"]) == b"new"
    assert b"kenji" not in base64.b64decode(payload["data"])

    # What a worker wrote under the old key, before the rotation, still reads.
    old = asyncio.run(
        EncryptionCodec(parse_keys(OLD)).encode([Payload(metadata={}, data=b'"from before"')])
    )[0]
    older = {
        "metadata": {k: base64.b64encode(v).decode() for k, v in old.metadata.items()},
        "data": base64.b64encode(old.data).decode(),
    }
    decoded = httpx.post(
        f"{codec_url}/decode",
        json={"payloads": [payload, older, plain("sent without the codec")]},
        headers=bearer() | {"X-Namespace": "default"},
    )
    assert decoded.status_code == 200, decoded.text
    texts = [base64.b64decode(p["data"]).decode() for p in decoded.json()["payloads"]]
    assert texts == ['"kenji@acme.example"', '"from before"', '"sent without the codec"']


def test_without_the_token_nothing_is_decoded(codec_url: str) -> None:
    body = {"payloads": [plain("x")]}
    for headers in ({}, bearer("wrong-token-0123456789"), {"Authorization": TOKEN}):
        for path in ("/decode", "/encode"):
            refused = httpx.post(f"{codec_url}{path}", json=body, headers=headers)
            assert refused.status_code == 401, (path, headers, refused.text)
            assert "CODEC_SERVER_TOKEN" in refused.json()["detail"]
    assert httpx.get(f"{codec_url}/healthz").json()["status"] == "ok"


def test_browsers_may_call_it_only_from_the_web_ui(codec_url: str) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    allowed = httpx.options(f"{codec_url}/decode", headers=preflight | {"Origin": UI})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI
    assert allowed.headers["access-control-allow-credentials"] == "true"

    other = httpx.options(
        f"{codec_url}/decode", headers=preflight | {"Origin": "https://evil.example"}
    )
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


def test_a_browser_signs_in_once_and_its_cookie_works_only_from_the_web_ui(
    codec_url: str,
) -> None:
    assert 'name="token"' in httpx.get(f"{codec_url}/login").text
    wrong = httpx.post(f"{codec_url}/login", data={"token": "not-the-token"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers

    signed_in = httpx.post(f"{codec_url}/login", data={"token": TOKEN})
    assert signed_in.status_code == 200
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    assert "Include cross-origin credentials" in signed_in.text
    session = signed_in.cookies["codec_session"]

    def decode(origin: str | None, value: str = session) -> httpx.Response:
        headers = {"Origin": origin} if origin else {}
        return httpx.post(
            f"{codec_url}/decode",
            json={"payloads": [plain("x")]},
            headers=headers,
            cookies={"codec_session": value},
        )

    ui = decode(UI)
    assert ui.status_code == 200 and ui.headers["access-control-allow-origin"] == UI
    assert decode("https://evil.example").status_code == 401
    assert decode(None).status_code == 401
    expires, _, signature = session.partition(".")
    assert decode(UI, f"{int(expires) + 3600}.{signature}").status_code == 401


def test_bad_requests_say_what_is_wrong_and_never_show_data(codec_url: str) -> None:
    garbage = httpx.post(f"{codec_url}/decode", content=b"not json", headers=bearer())
    assert garbage.status_code == 400 and "payloads" in garbage.json()["detail"]

    retired = asyncio.run(
        EncryptionCodec(parse_keys(new_key_line("retired"))).encode(
            [Payload(metadata={}, data=b'"kenji@acme.example"')]
        )
    )[0]
    unknown = httpx.post(
        f"{codec_url}/decode",
        json={
            "payloads": [
                {
                    "metadata": {
                        k: base64.b64encode(v).decode() for k, v in retired.metadata.items()
                    },
                    "data": base64.b64encode(retired.data).decode(),
                }
            ]
        },
        headers=bearer(),
    )
    assert unknown.status_code == 400
    assert "'retired'" in unknown.json()["detail"] and "kenji" not in unknown.text


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"CODEC_SERVER_TOKEN": ""}, "CODEC_SERVER_TOKEN must be set"),
        ({"CODEC_SERVER_TOKEN": "short"}, "at least 16 characters"),
        ({"ENCRYPTION_KEYS": ""}, "ENCRYPTION_KEYS is not set"),
        ({"ENCRYPTION_KEYS": "k1=" + NEW.split("=", 1)[1][:20]}, "ENCRYPTION_KEYS=(hidden)"),
        ({"CODEC_CORS_ORIGINS": "*"}, "CODEC_CORS_ORIGINS"),
    ],
)
def test_it_refuses_to_start_misconfigured(
    tmp_path: Path, changes: dict[str, str], expected: str
) -> None:
    env = app_environment("127.0.0.1:7233", tmp_path) | {
        "ENCRYPTION_KEYS": NEW,
        "CODEC_SERVER_TOKEN": TOKEN,
        "CODEC_SERVER_PORT": "1",  # never reached
    }
    result = subprocess.run(
        [sys.executable, "codec_server.py"],
        cwd=ROOT,
        env=env | changes,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert NEW.split("=", 1)[1][:20] not in result.stderr  # never the key
