"""Customer data is encrypted in Temporal, keys rotate, and ops read it only through the codec
server: the codec and its settings, a key rotation on the dev server, and a full journey run
as users run it (worker.py, starter.py, codec_server.py, the `temporal` CLI, the Web UI in
Chromium) searched for every email and name of the deal."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from infra.codec import (
    DecryptionError,
    EncryptionCodec,
    KeyRingError,
    data_converter,
    new_key_line,
    parse_keys,
)
from infra.settings import Settings, SettingsError, load_settings
from models.journey import MilestoneSignal, Stage
from tests.conftest import (
    ROOT,
    app_environment,
    binary,
    codec_server_running,
    deal,
    deal_file,
    onboarding_input,
    reach,
    starter,
    wait_for_stage,
    worker_running,
)
from worker import build_worker
from workflows.contract import Signals
from workflows.onboarding import OnboardingWorkflow

ENCRYPTED = b"binary/encrypted"


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


# --- the codec and its settings -----------------------------------------------------------


async def test_keys_rotate_old_data_reads_new_data_uses_the_first_key() -> None:
    key_a, key_b = new_key_line("a"), new_key_line("b")
    before = await EncryptionCodec(parse_keys(key_a)).encode([payload("kenji@acme.example")])
    assert before[0].metadata["encryption-key-id"] == b"a"
    assert b"kenji" not in before[0].data

    rotated = EncryptionCodec(parse_keys(f"{key_b},{key_a}"))
    after = await rotated.encode([payload("kenji@acme.example")])
    assert after[0].metadata == {"encoding": ENCRYPTED, "encryption-key-id": b"b"}
    unencrypted = payload("sent with the temporal CLI")
    assert await rotated.decode([before[0], after[0], unencrypted]) == [
        payload("kenji@acme.example"),
        payload("kenji@acme.example"),
        unencrypted,
    ]
    # A fresh nonce each time: the same value never encrypts the same way twice.
    again = await rotated.encode([payload("kenji@acme.example")])
    assert again[0].data != after[0].data


async def test_a_payload_this_ring_cannot_open_is_named_by_its_key_id_never_its_data() -> None:
    key_a, key_b = new_key_line("a"), new_key_line("b")
    secret = (await EncryptionCodec(parse_keys(key_a)).encode([payload("kenji@acme.example")]))[0]
    with pytest.raises(DecryptionError, match="key id 'a', which is not in ENCRYPTION_KEYS") as e:
        await EncryptionCodec(parse_keys(key_b)).decode([secret])
    assert "kenji" not in str(e.value)

    tampered = Payload()
    tampered.CopyFrom(secret)
    tampered.data = secret.data[:-1] + bytes([secret.data[-1] ^ 1])
    with pytest.raises(DecryptionError, match="'a' failed authentication"):
        await EncryptionCodec(parse_keys(key_a)).decode([tampered])
    # The key id is bound to the ciphertext: relabelled, it fails too.
    relabelled = Payload()
    relabelled.CopyFrom(secret)
    relabelled.metadata["encryption-key-id"] = b"b"
    same_key_as_b = EncryptionCodec({"b": parse_keys(key_a)["a"]})
    with pytest.raises(DecryptionError, match="failed authentication"):
        await same_key_as_b.decode([relabelled])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("k1=" + base64.b64encode(b"x" * 16).decode(), "key 'k1' is 16 bytes; AES-256 needs 32"),
        ("k1=not*base64!", "key 'k1' is not valid base64"),
        ("just-a-key", "entry 1 is not `id=base64key`"),
        ("k 1=" + base64.b64encode(b"x" * 32).decode(), "key id 'k 1'"),
        (f"{'k1=' + base64.b64encode(b'x' * 32).decode()},k1=abc", "key id 'k1' appears twice"),
    ],
)
def test_bad_keys_are_refused_at_load_naming_the_variable_never_the_key(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEYS", value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "ENCRYPTION_KEYS=(hidden)" in str(error.value)
    assert expected in str(error.value)
    assert value.split("=", 1)[-1] not in str(error.value)


def test_without_the_variable_the_key_file_make_run_writes_is_used(tmp_path: Path) -> None:
    key_file = tmp_path / "encryption-keys"
    assert Settings(encryption_keys_file=key_file).key_ring() == {}  # no file: no encryption
    key_file.write_text(new_key_line("local-1") + "\n")
    key_file.chmod(0o600)
    assert list(Settings(encryption_keys_file=key_file).key_ring()) == ["local-1"]
    given = new_key_line("ops")
    assert list(Settings(encryption_keys=given, encryption_keys_file=key_file).key_ring()) == [
        "ops"
    ]
    key_file.chmod(0o644)
    with pytest.raises(KeyRingError, match="readable by others: `chmod 600"):
        Settings(encryption_keys_file=key_file).key_ring()


# --- a key rotation on the dev server --------------------------------------------------------


def encrypted_client(env: WorkflowEnvironment, keys: str) -> Client:
    return Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter(parse_keys(keys)),
    )


async def test_a_running_onboarding_survives_a_key_rotation_and_takes_unencrypted_signals(
    dev_env: WorkflowEnvironment, settings: Settings, task_queue: str
) -> None:
    key_a, key_b = new_key_line("a"), new_key_line("b")
    account = f"rotate-{uuid.uuid4().hex[:8]}"
    workflow_id = f"onboarding-{account}"
    signed = (await dev_env.get_current_time()).astimezone()
    workflow_input = onboarding_input(deal(account_id=account, contract_signed_at=signed))

    client_a = encrypted_client(dev_env, key_a)
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with build_worker(
            client_a, settings, executor, task_queue=task_queue, activity_threads=4
        ):
            await client_a.start_workflow(
                OnboardingWorkflow.run, workflow_input, id=workflow_id, task_queue=task_queue
            )
            await reach(client_a.get_workflow_handle(workflow_id), Stage.KICKOFF)

    # What Temporal holds: ciphertext under key a.
    raw = dev_env.client.get_workflow_handle(workflow_id)
    started = (await raw.fetch_history()).events[0]
    stored = started.workflow_execution_started_event_attributes.input.payloads[0]
    assert stored.metadata["encryption-key-id"] == b"a"
    assert b"kenji" not in stored.data

    # Keys become [b, a]: a new worker replays what a wrote and writes under b.
    client_ba = encrypted_client(dev_env, f"{key_b},{key_a}")
    handle = client_ba.get_workflow_handle(workflow_id)
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with build_worker(
            client_ba, settings, executor, task_queue=task_queue, activity_threads=4
        ):
            assert (await reach(handle, Stage.KICKOFF)).champion.email == (
                "kenji.mori@acme-logistics.example"
            )
            await handle.signal(Signals.KICKOFF_HELD, MilestoneSignal(by="csm-007"))
            await reach(handle, Stage.ADOPT)
            # An operator's signal from the `temporal` CLI, without the codec, is taken.
            cli = subprocess.run(
                [binary("temporal"), "workflow", "signal", "--workflow-id", workflow_id]
                + ["--name", Signals.INTEGRATION_DONE, "--input", '{"by": "csm-007"}']
                + ["--address", dev_env.client.service_client.config.target_host],
                capture_output=True,
                text=True,
            )
            assert cli.returncode == 0, cli.stderr
            await reach(handle, Stage.REVIEW)

    signals = {
        e.workflow_execution_signaled_event_attributes.signal_name: (
            e.workflow_execution_signaled_event_attributes.input.payloads[0].metadata
        )
        for e in (await raw.fetch_history()).events
        if e.HasField("workflow_execution_signaled_event_attributes")
    }
    assert signals[Signals.KICKOFF_HELD]["encryption-key-id"] == b"b"
    assert signals[Signals.INTEGRATION_DONE]["encoding"] == b"json/plain"

    # Without key a, what it wrote cannot be read, and the error says which key is missing.
    with pytest.raises(DecryptionError, match="key id 'a'"):
        await EncryptionCodec(parse_keys(key_b)).decode([stored])
    await raw.terminate("test over")


# --- a whole journey, encrypted, as users run it ----------------------------------------------

TOKEN = "journey-token-0123456789abcdef"


@dataclass
class Journey:
    account: str
    env: dict[str, str]
    folder: Path
    codec_url: str
    cli_stderr: str
    people: list[str]  # every email and name of the deal (and what was added later)


CHAMPION = {"name": "Ingrid Vasquez-Tanaka", "email": "ingrid.vt@crypt-customer.example"}
NEW_CHAMPION = ("Paulo Reyes", "paulo.reyes@crypt-customer.example")
AE = {"id": "ae-001", "name": "Marta Kowalczyk", "email": "marta.kowalczyk@example.com"}
USERS = [{"name": "Olu Bankole", "email": "olu.bankole@crypt-customer.example"}]
ADDED_USER = ("Siobhan Quennell", "siobhan.quennell@crypt-customer.example")


@pytest.fixture(scope="module")
def journey(
    dev_env: WorkflowEnvironment, ui_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Journey]:
    folder = tmp_path_factory.mktemp("journey")
    account = f"crypt-{uuid.uuid4().hex[:8]}"
    env = app_environment(dev_env.client.service_client.config.target_host, folder) | {
        "ENCRYPTION_KEYS": f"{new_key_line('k2')},{new_key_line('k1')}",
        "CODEC_SERVER_TOKEN": TOKEN,
        "CODEC_CORS_ORIGINS": f"http://127.0.0.1:{ui_port}",
    }
    stderr: list[str] = []

    def cli(*args: str) -> None:
        result = starter(env, *args)
        assert result.returncode == 0, result.stderr
        stderr.append(result.stderr)

    path = deal_file(
        folder, "acme", account_id=account, champion=CHAMPION, account_executive=AE, users=USERS
    )
    with (
        worker_running(env, folder / "worker.log"),
        codec_server_running(env, folder / "codec.log") as codec_url,
    ):
        cli("start", "--from-file", path)
        cli("signal", account, "contract-signed", "--by", "ae-001")
        wait_for_stage(env, account, "kickoff")
        cli("users", account, "add", f"{ADDED_USER[0]} <{ADDED_USER[1]}>")
        cli(
            "champion",
            account,
            "--name",
            NEW_CHAMPION[0],
            "--email",
            NEW_CHAMPION[1],
            "--by",
            "csm-007",
        )
        for milestone in ("kickoff-held", "integration-done", "review-passed"):
            cli("signal", account, milestone, "--by", "csm-007")
        wait_for_stage(env, account, "completed")
        emails = [CHAMPION["email"], NEW_CHAMPION[1], AE["email"], USERS[0]["email"]]
        names = [CHAMPION["name"], NEW_CHAMPION[0], AE["name"], USERS[0]["name"]]
        emails.append(ADDED_USER[1])
        names.append(ADDED_USER[0])
        yield Journey(account, env, folder, codec_url, "\n".join(stderr), people=[*emails, *names])


def show(journey: Journey, workflow: str, *codec: str) -> str:
    """`temporal workflow show -o json`, as ops run it."""
    result = subprocess.run(
        [binary("temporal"), "workflow", "show", "--workflow-id", f"{workflow}-{journey.account}"]
        + ["--output", "json", "--address", journey.env["TEMPORAL_ADDRESS"], *codec],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def payload_texts(node: object) -> Iterator[str]:
    """Every payload's data in a `-o json` history, decoded from base64 (the CLI's JSON keeps
    payloads as protobuf JSON): a plain-text email would otherwise hide from a search."""
    if isinstance(node, dict):
        if set(node) >= {"metadata", "data"} and isinstance(node["data"], str):
            yield base64.b64decode(node["data"]).decode(errors="replace")
        for value in node.values():
            yield from payload_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from payload_texts(item)


def found(people: list[str], *texts: str) -> list[str]:
    """Which of these emails and names (whole, or a name's parts) occur in the texts."""
    haystack = "\n".join(texts).lower()
    hits = []
    for who in people:
        parts = [who] if "@" in who else [who, *re.split(r"[ -]", who)]
        hits += [part for part in parts if len(part) > 3 and part.lower() in haystack]
    return hits


def searchable(history_json: str) -> tuple[str, ...]:
    return (history_json, *payload_texts(json.loads(history_json)))


def codec_flags(journey: Journey, token: str = TOKEN) -> tuple[str, ...]:
    return ("--codec-endpoint", journey.codec_url, "--codec-auth", f"Bearer {token}")


def test_temporal_holds_no_customer_data_and_ops_read_it_through_the_codec_server(
    journey: Journey,
) -> None:
    for workflow in ("onboarding", "everboarding"):
        stored = show(journey, workflow)
        assert '"encryption-key-id": "azI="' in stored  # base64 of k2: the first key
        assert found(journey.people, *searchable(stored)) == [], workflow

    decoded = searchable(show(journey, "onboarding", *codec_flags(journey)))
    for who in (CHAMPION["email"], AE["email"], USERS[0]["email"], *ADDED_USER, *NEW_CHAMPION):
        assert found([who], *decoded), f"{who} not in the decoded history"

    # The CLI still reads its own answers (it has the keys): the champion named last.
    status = json.loads(starter(journey.env, "status", journey.account, "--json").stdout)
    assert status["champion"]["email"] == NEW_CHAMPION[1]


async def test_search_attributes_memo_summaries_and_details_hold_no_customer_data(
    journey: Journey, dev_env: WorkflowEnvironment
) -> None:
    client = Client(
        dev_env.client.service_client,
        data_converter=data_converter(parse_keys(journey.env["ENCRYPTION_KEYS"])),
    )
    texts: list[str] = []
    for workflow in ("onboarding", "everboarding"):
        handle = client.get_workflow_handle(f"{workflow}-{journey.account}")
        description = await handle.describe()
        texts += [str(pair.value) for pair in description.typed_search_attributes]
        texts += [json.dumps(await description.memo(), default=str)]
        texts += [str(await description.static_summary()), str(await description.static_details())]
        # Summaries of activities and timers, decoded through the codec server.
        history = json.loads(show(journey, workflow, *codec_flags(journey)))
        texts += [
            text
            for event in history["events"]
            if "userMetadata" in event
            for text in payload_texts(event["userMetadata"])
        ]
    metadata = await client.get_workflow_handle(f"onboarding-{journey.account}").query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    texts.append(metadata.current_details)
    assert any("Onboarding crypt-" in text for text in texts)  # they were read
    assert found(journey.people, *texts) == []


def log_lines(journey: Journey) -> list[str]:
    worker_log = (journey.folder / "worker.log").read_text()
    assert "worker polling" in worker_log
    return [*worker_log.splitlines(), *journey.cli_stderr.splitlines()]


def test_log_lines_hold_no_customer_data(journey: Journey) -> None:
    assert found(journey.people, *log_lines(journey)) == []


def outbox_names(journey: Journey) -> list[str]:
    names = [path.name for path in (journey.folder / "outbox").iterdir()]
    assert len(names) >= 7
    return names


def test_outbox_file_names_hold_no_customer_data(journey: Journey) -> None:
    assert found(journey.people, *outbox_names(journey)) == []


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)",
)
def test_the_web_ui_shows_the_decoded_champion_through_the_codec_server(
    journey: Journey, ui_port: int
) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    run_page = (
        f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/onboarding-{journey.account}"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        # Without the codec server the UI shows the input as ciphertext (base64) only.
        page.goto(run_page)
        expect(page.get_by_role("heading", name=f"onboarding-{journey.account}")).to_be_visible()
        # (Not wait_for_function: its polling evaluates a string, which the UI's CSP forbids.)
        expect(page.locator("body")).to_contain_text(re.compile(r"[A-Za-z0-9+/]{300}"))
        assert CHAMPION["email"] not in page.content()
        assert '"account_name"' not in page.content()
        page.screenshot(path=ARTIFACTS / "ui-encrypted-input.png", full_page=True)

        # What ops do once: sign in at the codec server, then point the UI at it.
        page.goto(f"{journey.codec_url}/login")
        page.get_by_label("Codec server token").fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Signed in for 8 hours")).to_be_visible()
        page.goto(run_page)
        page.get_by_test_id("data-encoder-status").click()
        page.get_by_test_id("use-local-endpoint-input").click()
        page.locator("#data-encoder-endpoint-input").fill(journey.codec_url)
        page.locator("label").filter(has_text="Include cross-origin credentials").click()
        page.locator('#data-encoder-settings >> [data-testid="confirm-modal-button"]').click()

        page.goto(run_page)
        expect(page.get_by_text(CHAMPION["email"]).first).to_be_visible(timeout=20000)
        page.screenshot(path=ARTIFACTS / "ui-decoded-input.png", full_page=True)
        browser.close()


async def test_the_cli_without_the_keys_says_what_it_cannot_read(
    journey: Journey,
) -> None:
    other_keys = journey.env | {"ENCRYPTION_KEYS": new_key_line("stranger")}
    result = await asyncio.to_thread(starter, other_keys, "status", journey.account)
    assert result.returncode == 1
    assert "key id 'k2'" in result.stderr and "Traceback" not in result.stderr


def test_the_codec_server_without_the_token_is_refused_by_the_cli(journey: Journey) -> None:
    refused = subprocess.run(
        [binary("temporal"), "workflow", "show", "--workflow-id", f"onboarding-{journey.account}"]
        + ["--output", "json", "--address", journey.env["TEMPORAL_ADDRESS"]]
        + list(codec_flags(journey, "wrong-token"))
        # It retries a refused codec call until its deadline: keep that short.
        + ["--command-timeout", "5s"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert CHAMPION["email"] not in refused.stdout
