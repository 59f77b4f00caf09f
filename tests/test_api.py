"""The HTTP API as integrators call it: `api_server.py` run as ops run it, spoken to over real
HTTP (httpx), with the real dev server and worker behind it. Each endpoint's answer, each
refusal, and that a refused request changed nothing."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.guards import signature_header
from tests.conftest import (
    ROOT,
    api_running,
    app_environment,
    starter,
    status_json,
    wait_for_stage,
    worker_running,
)

SECRET = "shared-secret-0123456789"
HUBSPOT_SECRET = "hubspot-secret-0123456789"
TOKEN = "ops-token-0123456789abcdef"
TOKENS = {"csm-007": TOKEN, "lead": "lead-token-0123456789abcdef"}


@pytest.fixture(scope="module")
def stack(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], str, Path]]:
    """One worker and one API for the module (each test its own accounts): the environment,
    the API's URL and its log."""
    folder = tmp_path_factory.mktemp("api")
    env = app_environment(dev_env.client.service_client.config.target_host, folder) | {
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_SECRETS": json.dumps({"hubspot": HUBSPOT_SECRET}),
        "API_TOKENS": json.dumps(TOKENS),
    }
    with worker_running(env, folder / "worker.log"), api_running(env, folder / "api.log") as url:
        yield env, url, folder / "api.log"


@pytest.fixture(scope="module")
def env(stack: tuple[dict[str, str], str, Path]) -> dict[str, str]:
    return stack[0]


@pytest.fixture(scope="module")
def url(stack: tuple[dict[str, str], str, Path]) -> str:
    return stack[1]


def deal(account: str, **changes: Any) -> dict[str, Any]:
    data = json.loads((ROOT / "examples" / "deal-acme.json").read_text())
    return data | {"account_id": account} | changes


def signed(
    data: Any, secret: str = SECRET, *, source: str | None = None, now: float | None = None
) -> dict[str, Any]:
    """httpx arguments for a signed JSON write: the exact bytes that were signed."""
    body = json.dumps(data).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Signature": signature_header(secret, body, now),
    }
    if source:
        headers["X-Source"] = source
    return {"content": body, "headers": headers}


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def runs(client: Client, account: str) -> int:
    """How many runs Temporal holds for the account's onboarding (0: never started)."""
    return len([r async for r in client.list_workflows(f"WorkflowId = 'onboarding-{account}'")])


async def exists(client: Client, account: str) -> bool:
    try:
        await client.get_workflow_handle(f"onboarding-{account}").describe()
    except RPCError:
        return False
    return True


# --- deals --------------------------------------------------------------------------------------


def test_a_deal_starts_once_and_its_retry_gets_the_same_answer(url: str, env: dict) -> None:
    first = httpx.post(f"{url}/v1/deals", **signed(deal("api-one")))
    assert first.status_code == 202, first.text
    assert first.json() == {
        "workflow_id": "onboarding-api-one",
        "status_url": f"{url}/v1/accounts/api-one",
    }
    again = httpx.post(f"{url}/v1/deals", **signed(deal("api-one")))
    assert (again.status_code, again.json()) == (200, first.json())

    other = httpx.post(f"{url}/v1/deals", **signed(deal("api-one", account_name="Other Co")))
    assert other.status_code == 409
    assert "account api-one already has an onboarding" in other.json()["detail"]
    # The first deal's onboarding is the one there, and it runs.
    assert status_json(env, "api-one")["account_name"] == "Acme Logistics GmbH"


async def test_twenty_concurrent_deliveries_of_one_deal_start_one_onboarding(
    url: str, dev_env: WorkflowEnvironment
) -> None:
    arguments = signed(deal("api-race"))
    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(
            *(http.post(f"{url}/v1/deals", **arguments) for _ in range(20))
        )
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] * 19 + [202], [a.text for a in answers if a.status_code >= 300]
    assert len({answer.text for answer in answers}) == 1
    assert await runs(dev_env.client, "api-race") == 1


async def test_an_invalid_deal_is_refused_naming_each_field(
    url: str, env: dict, dev_env: WorkflowEnvironment
) -> None:
    wrong = deal("api-wrong", plan="platinum", champion={"name": "K", "email": "not-an-address"})
    answer = httpx.post(f"{url}/v1/deals", **signed(wrong))
    assert answer.status_code == 422
    fields = {error["field"] for error in answer.json()["errors"]}
    assert fields == {"plan", "champion.email"}

    # The CLI says the same of the same document.
    path = Path(env["OUTBOX_DIR"]).parent / "wrong.json"
    path.write_text(json.dumps(wrong))
    cli = starter(env, "start", "--from-file", str(path))
    for error in answer.json()["errors"]:
        assert f"{error['field']}: {error['message']}" in " ".join(cli.stderr.split())

    unknown = httpx.post(f"{url}/v1/deals", **signed(deal("api-wrong", playbook="no-such")))
    assert unknown.status_code == 422 and "no-such" in unknown.json()["detail"]
    not_json = {**signed({}), "content": b"{not json"}
    assert httpx.post(f"{url}/v1/deals", **not_json).status_code == 401  # signed other bytes
    assert not await exists(dev_env.client, "api-wrong")


@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong secret", "stale", "future", "body changed", "malformed"],
)
async def test_a_forged_stale_or_missing_signature_changes_nothing(
    url: str, tamper: str, dev_env: WorkflowEnvironment
) -> None:
    account = f"api-forged-{tamper.replace(' ', '-')}"
    arguments = signed(deal(account))
    headers = arguments["headers"]
    if tamper == "missing":
        del headers["X-Signature"]
    elif tamper == "wrong secret":
        arguments = signed(deal(account), "another-secret-0123456789")
    elif tamper in ("stale", "future"):
        arguments = signed(deal(account), now=time.time() + (-600 if tamper == "stale" else 600))
    elif tamper == "body changed":
        arguments["content"] = arguments["content"].replace(b"84000", b"99000")
    else:
        headers["X-Signature"] = "v1=deadbeef"
    answer = httpx.post(f"{url}/v1/deals", **arguments)
    assert answer.status_code == 401, answer.text
    assert not await exists(dev_env.client, account)


def test_a_signature_made_for_one_account_is_refused_for_another(url: str) -> None:
    """The signature covers the time and the body, not the URL: a captured events body sent
    to another account within the five minutes is refused; the same request again is a
    retry, and passes."""
    assert httpx.post(f"{url}/v1/deals", **signed(deal("api-victim"))).status_code == 202
    assert httpx.post(f"{url}/v1/deals", **signed(deal("api-sender"))).status_code == 202
    captured = signed({"type": "engagement", "kind": "login"})
    sent = httpx.post(f"{url}/v1/accounts/api-sender/events", **captured)
    assert sent.status_code == 202
    assert httpx.post(f"{url}/v1/accounts/api-sender/events", **captured).status_code == 202
    replayed = httpx.post(f"{url}/v1/accounts/api-victim/events", **captured)
    assert replayed.status_code == 401 and "another request" in replayed.json()["detail"]


@pytest.mark.parametrize("header", ["t=" + "9" * 5000 + ",v1=" + "a" * 64, "t=1,v1=ü" * 3])
def test_a_hostile_signature_header_is_a_401_not_a_crash(url: str, header: str) -> None:
    arguments = signed(deal("api-hostile"))
    arguments["headers"]["X-Signature"] = header.encode()  # as sent, UTF-8 and all
    assert httpx.post(f"{url}/v1/deals", **arguments).status_code == 401


def test_only_json_within_the_size_limit_is_read(url: str) -> None:
    as_form = signed(deal("api-form"))
    as_form["headers"]["Content-Type"] = "application/x-www-form-urlencoded"
    assert httpx.post(f"{url}/v1/deals", **as_form).status_code == 415

    huge = deal("api-huge", goals=["x" * 1000] * 300)  # ~300 KiB
    answer = httpx.post(f"{url}/v1/deals", **signed(huge))
    assert answer.status_code == 413 and "256 KiB" in answer.json()["detail"]

    # Without a Content-Length (chunked), the reading stops at the limit all the same.
    chunked = signed(huge)
    body = chunked.pop("content")
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    assert httpx.post(f"{url}/v1/deals", content=chunks, **chunked).status_code == 413

    as_text = httpx.post(
        f"{url}/v1/accounts/api-one/actions/pause",
        content=b"reason=holiday",
        headers=bearer() | {"Content-Type": "text/plain"},
    )
    assert as_text.status_code == 415


# --- webhooks -----------------------------------------------------------------------------------


# The same instant for every delivery of a payload: a retry is the same deal.
yesterday = time.time() - 86400


def example(name: str) -> Any:
    """A shipped example payload, its close dated yesterday (the door refuses dates over two
    years old, and the examples are fixed)."""
    data = json.loads((ROOT / "examples" / f"webhook-{name}.json").read_text())
    if "closedate" in data:
        data["closedate"] = str(int(yesterday * 1000))
    if "opportunity" in data:
        data["opportunity"]["LastModifiedDate"] = time.strftime(
            "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(yesterday)
        )
    return data


def test_the_crm_examples_start_onboardings_and_other_stages_are_ignored(
    url: str, env: dict
) -> None:
    hubspot = httpx.post(
        f"{url}/v1/webhooks/hubspot", **signed(example("hubspot-closedwon"), HUBSPOT_SECRET)
    )
    assert hubspot.status_code == 202, hubspot.text
    salesforce = httpx.post(
        f"{url}/v1/webhooks/salesforce", **signed(example("salesforce-closedwon"))
    )
    assert salesforce.status_code == 202, salesforce.text
    for answer in (hubspot, salesforce):
        account = answer.json()["status_url"].rsplit("/", 1)[1]
        assert status_json(env, account)["workflow_status"] == "running"

    before = starter(env, "list", "--json").stdout
    for name, secret in (("hubspot", HUBSPOT_SECRET), ("salesforce", SECRET)):
        ignored = httpx.post(
            f"{url}/v1/webhooks/{name}", **signed(example(f"{name}-other-stage"), secret)
        )
        assert ignored.status_code == 200, ignored.text
        assert "not closed won" in ignored.json()["ignored"]
    assert len(json.loads(starter(env, "list", "--json").stdout)) == len(json.loads(before))


def test_a_source_with_its_own_secret_refuses_the_shared_one(url: str) -> None:
    answer = httpx.post(f"{url}/v1/webhooks/hubspot", **signed(example("hubspot-closedwon")))
    assert answer.status_code == 401


def test_an_unknown_source_and_an_unmappable_payload_are_named(url: str) -> None:
    unknown = httpx.post(f"{url}/v1/webhooks/pipedrive", **signed({"stage": "won"}))
    assert unknown.status_code == 404 and "intake/pipedrive.toml" in unknown.json()["detail"]

    payload = example("hubspot-closedwon") | {"plan": "Platinum"}
    unmapped = httpx.post(f"{url}/v1/webhooks/hubspot", **signed(payload, HUBSPOT_SECRET))
    assert unmapped.status_code == 422, unmapped.text
    assert "Platinum" in unmapped.json()["detail"]


# --- events -------------------------------------------------------------------------------------


def events(url: str, account: str, data: Any, **options: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/accounts/{account}/events", **signed(data, **options))


def test_events_before_their_stage_are_applied_when_it_comes(url: str, env: dict) -> None:
    assert httpx.post(f"{url}/v1/deals", **signed(deal("api-early"))).status_code == 202
    wait_for_stage(env, "api-early", "depart")
    early = events(
        url, "api-early", [{"type": "kickoff_held"}, {"type": "integration_done"}], source="zoom"
    )
    assert early.status_code == 202, early.text
    assert early.json() == {"accepted": 2, "sent_to": ["onboarding"]}
    assert events(url, "api-early", {"type": "kickoff_held"}).status_code == 202  # a duplicate

    signed_at = {"type": "contract_signed", "at": "2026-11-20T10:00:00Z", "by": "docusign"}
    assert events(url, "api-early", signed_at, source="docusign").status_code == 202
    status = wait_for_stage(env, "api-early", "review")
    assert status["milestones"]["kickoff-held"]["by"] == "zoom"
    assert status["milestones"]["contract-signed"]["by"] == "docusign"


def test_engagement_comes_in_batches_and_a_bad_list_applies_nothing(url: str, env: dict) -> None:
    assert httpx.post(f"{url}/v1/deals", **signed(deal("api-usage"))).status_code == 202
    batch = [
        {"type": "engagement", "kind": "login", "count": 40, "at": "2026-12-01T09:00:00Z"},
        {"type": "support_ticket", "ticket": "T-77"},
    ]
    assert events(url, "api-usage", batch).status_code == 202

    def engagements() -> dict:
        return status_json(env, "api-usage")["engagements"]

    deadline = time.monotonic() + 20
    while engagements() != {"login": 40, "support_ticket": 1}:
        assert time.monotonic() < deadline, engagements()
        time.sleep(0.2)

    bad = [{"type": "engagement", "kind": "login", "count": 5}, {"type": "meeting_booked"}]
    refused = events(url, "api-usage", bad)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["1.type"]
    assert "'meeting_booked' is not an event type" in refused.json()["detail"]
    typo = events(url, "api-usage", {"type": "task_done", "task": "add-users"})
    assert {e["field"] for e in typo.json()["errors"]} == {"task_id", "task"}
    assert engagements() == {"login": 40, "support_ticket": 1}

    assert events(url, "nobody-here", {"type": "kickoff_held"}).status_code == 404


def test_a_list_retried_with_its_idempotency_key_counts_once(url: str, env: dict) -> None:
    """A sender whose request failed part-way (or whose answer was lost) sends the list
    again with the same key: each event is taken once. Without a key, a batch counts again."""
    assert httpx.post(f"{url}/v1/deals", **signed(deal("api-retry"))).status_code == 202
    batch = [{"type": "engagement", "kind": "login", "count": 3}]
    keyed = signed(batch)
    keyed["headers"]["Idempotency-Key"] = "usage-2026-12-06T10"
    for _ in range(3):
        assert httpx.post(f"{url}/v1/accounts/api-retry/events", **keyed).status_code == 202
    longer = signed(batch + [{"type": "support_ticket", "ticket": "T-1"}])
    longer["headers"]["Idempotency-Key"] = "usage-2026-12-06T10"  # the first event: already in
    assert httpx.post(f"{url}/v1/accounts/api-retry/events", **longer).status_code == 202
    unkeyed = signed([{"type": "engagement", "kind": "feature_used", "count": 2}])
    for _ in range(2):
        assert httpx.post(f"{url}/v1/accounts/api-retry/events", **unkeyed).status_code == 202

    expected = {"login": 3, "support_ticket": 1, "feature_used": 4}
    deadline = time.monotonic() + 20
    while (counts := status_json(env, "api-retry")["engagements"]) != expected:
        assert time.monotonic() < deadline, counts
        time.sleep(0.2)


def test_after_the_onboarding_engagement_goes_to_the_everboarding(url: str, env: dict) -> None:
    assert httpx.post(f"{url}/v1/deals", **signed(deal("api-done"))).status_code == 202
    journey = [
        {"type": "contract_signed", "by": "ae-001"},
        {"type": "kickoff_held"},
        {"type": "integration_done"},
        {"type": "review_passed"},
    ]
    assert events(url, "api-done", journey).status_code == 202
    wait_for_stage(env, "api-done", "completed")

    late = events(
        url, "api-done", [{"type": "engagement", "kind": "login"}, {"type": "kickoff_held"}]
    )
    assert late.status_code == 409 and "kickoff_held no longer applies" in late.json()["detail"]
    usage = events(url, "api-done", {"type": "engagement", "kind": "feature_used", "count": 3})
    assert (usage.status_code, usage.json()["sent_to"]) == (202, ["everboarding"])


# --- reads and actions --------------------------------------------------------------------------


def test_reads_answer_what_the_cli_prints(url: str, env: dict) -> None:
    assert httpx.post(f"{url}/v1/deals", **signed(deal("api-read"))).status_code == 202
    wait_for_stage(env, "api-read", "depart")
    read = httpx.get(f"{url}/v1/accounts/api-read", headers=bearer())
    assert read.status_code == 200
    assert read.json() == status_json(env, "api-read")

    listed = httpx.get(f"{url}/v1/onboardings", params={"stage": "depart"}, headers=bearer())
    cli = starter(env, "list", "--stage", "depart", "--json")
    assert listed.status_code == 200 and listed.json() == json.loads(cli.stdout)
    assert "api-read" in {line["account_id"] for line in listed.json()}

    wrong = httpx.get(f"{url}/v1/onboardings", params={"stage": "later"}, headers=bearer())
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "stage"
    assert httpx.get(f"{url}/v1/accounts/nobody-here", headers=bearer()).status_code == 404
    for headers in ({}, bearer("not-a-token-0123456789"), {"Authorization": TOKEN}):
        refused = httpx.get(f"{url}/v1/accounts/api-read", headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert "account_name" not in refused.text


def act(url: str, account: str, name: str, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/accounts/{account}/actions/{name}",
        json={} if body is None else body,
        headers=bearer() | headers,
    )


def test_actions_answer_the_update_or_the_validators_reason(url: str, env: dict) -> None:
    assert httpx.post(f"{url}/v1/deals", **signed(deal("api-act"))).status_code == 202
    wait_for_stage(env, "api-act", "depart")

    paused = act(url, "api-act", "pause", {"reason": "customer on holiday"})
    assert paused.status_code == 200 and paused.json()["paused_since"]
    again = act(url, "api-act", "pause", {"reason": "still"})
    cli = starter(env, "pause", "api-act", "--by", "csm-007", "--reason", "still")
    assert again.status_code == 409
    assert f"error: {again.json()['detail']}" == " ".join(cli.stderr.split())

    # The same Idempotency-Key is the same action: the second call answers as the first did.
    key = {"Idempotency-Key": "resume-after-holiday"}
    first = act(url, "api-act", "resume", **key)
    second = act(url, "api-act", "resume", **key)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert act(url, "api-act", "resume").status_code == 409  # a new resume: not paused

    extended = act(url, "api-act", "extend", {"extend_by": "7d", "reason": "legal review"})
    assert extended.status_code == 200, extended.text
    assert act(url, "api-act", "extend", {"extend_by": 7, "reason": "x"}).status_code == 422

    by = act(url, "api-act", "pause", {"reason": "x", "by": "someone-else"})
    assert by.status_code == 422 and by.json()["errors"][0]["field"] == "by"
    assert act(url, "api-act", "teleport").status_code == 404
    cancelled = act(url, "api-act", "cancel", {"reason": "price", "note": "budget cut"})
    assert cancelled.status_code == 200
    status = status_json(env, "api-act")
    assert status["cancellation"]["by"] == "csm-007"  # the token's name
    assert act(url, "api-act", "resume").status_code == 409


# --- the service itself ---------------------------------------------------------------------------


def test_health_readiness_docs_and_logs(
    stack: tuple[dict[str, str], str, Path], tmp_path: Path
) -> None:
    env, url, log = stack
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz")
    assert (ready.status_code, ready.json()) == (200, {"temporal": "ok", "database": "ok"})
    docs = httpx.get(f"{url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # Its scripts and styles come from the API itself: the page works with no internet.
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))]
    assert all(httpx.get(f"{url}{asset}").status_code == 200 for asset in assets)
    document = httpx.get(f"{url}/openapi.json").json()
    paths = document["paths"]
    assert {"/v1/deals", "/v1/webhooks/{source}", "/v1/accounts/{account_id}/events"} <= set(paths)
    # What to send, though the routes read the signed bytes themselves.
    deal_body = paths["/v1/deals"]["post"]["requestBody"]["content"]["application/json"]
    assert deal_body["schema"]["properties"]["champion"] == {"$ref": "#/components/schemas/Contact"}
    assert "Contact" in document["components"]["schemas"]

    # Who acted is logged; what customers are called is not.
    assert httpx.get(f"{url}/v1/onboardings", headers=bearer()).status_code == 200
    closed = example("hubspot-closedwon")
    assert httpx.post(f"{url}/v1/webhooks/hubspot", **signed(closed, HUBSPOT_SECRET)).is_success
    text = log.read_text()
    assert "token:csm-007" in text and "source:hubspot" in text
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text), "an email address in the API log"

    # Temporal down: the process is up, not ready, and says what is missing.
    nowhere = env | {"TEMPORAL_ADDRESS": "127.0.0.1:1"}
    with api_running(nowhere, tmp_path / "api.log") as down:
        assert httpx.get(f"{down}/healthz").status_code == 200
        answer = httpx.get(f"{down}/readyz", timeout=30)
        assert answer.status_code == 503
        assert answer.json() == {"temporal": "unreachable", "database": "ok"}


def test_a_source_over_its_rate_is_told_when_to_come_back(
    env: dict[str, str], tmp_path: Path
) -> None:
    with api_running(env | {"API_RATE_LIMIT": "1"}, tmp_path / "api.log") as slow:
        answers = [httpx.get(f"{slow}/v1/onboardings", headers=bearer()) for _ in range(4)]
        assert [a.status_code for a in answers[:2]] == [200, 200]
        assert answers[-1].status_code == 429 and int(answers[-1].headers["Retry-After"]) >= 1

        # A CRM's webhooks have their own bucket, whatever the tokens did.
        other_stage = example("salesforce-other-stage")
        webhooks = [
            httpx.post(f"{slow}/v1/webhooks/salesforce", **signed(other_stage)) for _ in range(4)
        ]
        assert [w.status_code for w in webhooks[:2]] == [200, 200]
        assert webhooks[-1].status_code == 429 and webhooks[-1].headers["Retry-After"]


def test_a_database_behind_its_schema_makes_the_api_not_ready(
    env: dict[str, str], tmp_path: Path
) -> None:
    unmigrated = env | {"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    with api_running(unmigrated, tmp_path / "api.log") as api:
        answer = httpx.get(f"{api}/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"temporal": "ok", "database": "not migrated"}


def test_a_broken_mapping_file_stops_the_api_at_its_start(
    env: dict[str, str], tmp_path: Path
) -> None:
    import shutil
    import subprocess
    import sys

    intake = tmp_path / "intake"
    shutil.copytree(ROOT / "intake", intake)
    text = re.sub(
        r"^\[closed_won\]", "[closed_wonn]", (intake / "hubspot.toml").read_text(), flags=re.M
    )
    (intake / "hubspot.toml").write_text(text)
    result = subprocess.run(
        [sys.executable, "api_server.py"],
        cwd=ROOT,
        env=env | {"INTAKE_DIR": str(intake)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "hubspot.toml" in result.stderr and "closed_won" in result.stderr


@pytest.mark.parametrize(
    ("settings", "named"),
    [({"API_TOKENS": ""}, "API_TOKENS"), ({"WEBHOOK_SECRET": ""}, "WEBHOOK_SECRET")],
)
def test_the_api_refuses_to_start_without_secrets(
    env: dict[str, str], settings: dict[str, str], named: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "api_server.py"],
        cwd=ROOT,
        env=env | {"WEBHOOK_SECRETS": "{}"} | settings,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and named in result.stderr


def readme_block(marker: str) -> str:
    """The shell block after `<!-- marker: ... -->` in the README."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(f"<!-- {marker}:") :]
    return after.split("```\n", 2)[1]


def test_the_readmes_curl_and_openssl_examples_work(url: str, env: dict, tmp_path: Path) -> None:
    """Run as a reader would, from a folder like the checkout under `make run`: the deal
    example, the secret and the token where the README says they are."""
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "deal-acme.json").write_text(json.dumps(deal("api-readme"), indent=2))
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "webhook-secret").write_text(SECRET + "\n")
    (tmp_path / ".data" / "api-tokens.json").write_text(json.dumps({"csm-007": TOKEN}))

    def run(block: str) -> dict:
        import subprocess

        script = block.replace("http://localhost:8000", url).replace("/acme/", "/api-readme/")
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        answer: dict = json.loads(result.stdout)
        return answer

    started = run(readme_block("signing-example"))
    assert started["workflow_id"] == "onboarding-api-readme", started
    wait_for_stage(env, "api-readme", "depart")
    paused = run(readme_block("action-example"))
    assert paused["paused_since"], paused
    assert status_json(env, "api-readme")["paused_since"]
