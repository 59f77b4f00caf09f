"""The customer's portal page as a customer opens it: a link from `starter.py portal-link`,
`api_server.py` and the worker on the dev server, spoken to over HTTP (httpx). What the page
shows, what the customer can do, and that a link which should not open shows nothing."""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.guards import signature_header
from portal.links import issue
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
PORTAL_SECRET = "portal-secret-0123456789abc"


@pytest.fixture(scope="module")
def stack(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], str, Path]]:
    folder = tmp_path_factory.mktemp("portal")
    env = app_environment(dev_env.client.service_client.config.target_host, folder) | {
        "WEBHOOK_SECRET": SECRET,
        "API_TOKENS": json.dumps({"ops": "ops-token-0123456789abcdef"}),
        "PORTAL_SECRET": PORTAL_SECRET,
    }
    with worker_running(env, folder / "worker.log"), api_running(env, folder / "api.log") as url:
        yield env | {"PORTAL_URL": url}, url, folder / "api.log"


def start(
    url: str, env: dict[str, str], account: str, *events: str, playbook: str = "standard"
) -> None:
    deal = json.loads((ROOT / "examples" / "deal-acme.json").read_text())
    body = json.dumps(deal | {"account_id": account, "playbook": playbook}).encode()
    headers = {"Content-Type": "application/json", "X-Signature": signature_header(SECRET, body)}
    assert httpx.post(f"{url}/v1/deals", content=body, headers=headers).status_code == 202
    if events:
        data = json.dumps([{"type": event} for event in events]).encode()
        headers["X-Signature"] = signature_header(SECRET, data)
        answer = httpx.post(f"{url}/v1/accounts/{account}/events", content=data, headers=headers)
        assert answer.status_code == 202, answer.text


def link(env: dict[str, str], account: str, *options: str) -> str:
    result = starter(env, "portal-link", account, *options)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def form(page: httpx.Response, action: str) -> dict[str, str]:
    """The CSRF field of the page's form posting to `action`."""
    match = re.search(
        rf'action="{re.escape(action)}">\s*<input type="hidden" name="csrf" value="(\w+)"',
        page.text,
    )
    assert match, f"no form for {action}"
    return {"csrf": match[1]}


def test_the_customer_sees_their_plan_and_ticks_their_own_task(
    stack: tuple[dict[str, str], str, Path],
) -> None:
    env, url, log = stack
    start(url, env, "portal-one", "contract_signed", "kickoff_held")
    wait_for_stage(env, "portal-one", "adopt")
    address = link(env, "portal-one")
    assert address.startswith(f"{url}/portal/portal-one.")

    page = httpx.get(address)
    assert page.status_code == 200
    assert "Acme Logistics GmbH" in page.text
    assert re.search(r'class="current" aria-current="step">\s*<span class="name">Set-up', page.text)
    assert "Expected go-live:" in page.text
    for header, value in (
        ("X-Frame-Options", "DENY"),
        ("X-Robots-Tag", "noindex, nofollow"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ):
        assert page.headers[header] == value
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

    path = address.removeprefix(url)
    done = httpx.post(f"{address}/tasks/add-users", data=form(page, f"{path}/tasks/add-users"))
    assert done.status_code == 303
    again = httpx.post(f"{address}/tasks/add-users", data=form(page, f"{path}/tasks/add-users"))
    assert again.status_code == 303  # a double click: one thing done
    shown = httpx.get(url + done.headers["location"])
    assert re.search(r'role="status">Marked done: [^<]+\. Thank you!', shown.text)
    assert re.search(r'class="done">\s*<div>\s*<span class="title">', shown.text)
    task = next(t for t in status_json(env, "portal-one")["tasks"] if t["id"] == "add-users")
    assert task["done_at"] and task["done_by"] == "Kenji Mori"

    # The solutions engineer's task is not the customer's to tick, whatever the form says.
    theirs = httpx.post(
        f"{address}/tasks/integration-test", data=form(page, f"{path}/tasks/add-users")
    )
    assert theirs.status_code == 403
    forged = httpx.post(f"{address}/tasks/configure", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    task = next(t for t in status_json(env, "portal-one")["tasks"] if t["id"] == "configure")
    assert task["done_at"] is None

    # The link opens the page; it is never written to the log.
    assert address.rsplit("/", 1)[1] not in log.read_text()


def keys(env: dict[str, str], account: str, part: str) -> list[str]:
    """The keys of the account's mails in the outbox that contain `part`."""
    found = []
    for mail in Path(env["OUTBOX_DIR"]).glob("*.eml"):
        message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
        key = str(message["X-Onboarding-Key"]).strip()  # a long key is folded
        if key.startswith(f"onboarding-{account}.") and part in key:
            found.append(key)
    return sorted(found)


def welcome_link(env: dict[str, str], url: str, account: str) -> str:
    """The champion's link in the account's welcome mail, at the API under test (the
    worker's PORTAL_URL is the default, the API here has a port of its own)."""
    deadline = time.monotonic() + 20
    while True:
        for mail in Path(env["OUTBOX_DIR"]).glob("*.eml"):
            message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
            key = str(message["X-Onboarding-Key"])  # onboarding-<account>.<chain>:<what>
            if not (key.startswith(f"onboarding-{account}.") and key.endswith(":kickoff:welcome")):
                continue
            body = message.get_body(preferencelist=("plain",))
            tokens = re.findall(r"https?://\S+/portal/(\S+)", str(body.get_content()))  # type: ignore[union-attr]
            assert tokens, "the welcome mail has no portal link"
            assert message["To"].endswith("<kenji.mori@acme-logistics.example>")
            return f"{url}/portal/{tokens[0]}"
        assert time.monotonic() < deadline, "no welcome mail"
        time.sleep(0.2)


def test_the_welcome_mail_carries_the_champions_own_link(
    stack: tuple[dict[str, str], str, Path],
) -> None:
    env, url, _ = stack
    start(url, env, "portal-mail", "contract_signed")
    wait_for_stage(env, "portal-mail", "kickoff")
    page = httpx.get(welcome_link(env, url, "portal-mail"))
    assert page.status_code == 200 and "Acme Logistics GmbH" in page.text


def start_japanese(url: str, env: dict[str, str], account: str) -> str:
    """The Japanese example deal started for `account`; its page's link."""
    deal = json.loads((ROOT / "examples" / "deal-ja.json").read_text())
    body = json.dumps(deal | {"account_id": account}).encode()
    headers = {"Content-Type": "application/json", "X-Signature": signature_header(SECRET, body)}
    assert httpx.post(f"{url}/v1/deals", content=body, headers=headers).status_code == 202
    wait_for_stage(env, account, "depart")
    return link(env, account)


def test_a_japanese_customers_page_is_in_japanese(stack: tuple[dict[str, str], str, Path]) -> None:
    env, url, _ = stack
    page = httpx.get(start_japanese(url, env, "portal-ja"))
    assert page.status_code == 200
    assert '<html lang="ja">' in page.text
    # The CS team's titles too, where its files give them in Japanese.
    for words in ("現在の状況", "ご契約", "本番稼働の見込み", "サポート担当", "はじめに"):
        assert words in page.text
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", page.text)
    for english in ("Where you are", "Expected go-live", "Who helps you", "Your plan"):
        assert english not in page.text
    refused = httpx.get(f"{url}/portal/nothing", headers={"Accept-Language": "ja,en;q=0.5"})
    assert refused.status_code == 403 and "このリンクは開けません" in refused.text


def test_asking_for_help_mails_the_csm_once_replying_to_the_customer(
    stack: tuple[dict[str, str], str, Path],
) -> None:
    env, url, _ = stack
    start(url, env, "portal-help", "contract_signed")
    wait_for_stage(env, "portal-help", "kickoff")
    address = link(env, "portal-help")
    path = address.removeprefix(url)
    page = httpx.get(address)
    empty = httpx.post(f"{address}/help", data=form(page, f"{path}/help") | {"message": "  "})
    assert empty.status_code == 422 and "message" in empty.text

    question = {"message": "Where do we find the SSO settings? Our IT asks."}
    for _ in range(2):  # a double click
        sent = httpx.post(f"{address}/help", data=form(page, f"{path}/help") | question)
        assert sent.status_code == 303
    shown = httpx.get(url + sent.headers["location"])
    assert "Your message is on its way." in shown.text

    def asked() -> list[email.message.EmailMessage]:
        found = []
        for mail in Path(env["OUTBOX_DIR"]).glob("*.eml"):
            message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
            if "asks for help" in str(message["Subject"]) and "portal-help" in str(
                message.get_body().get_content()  # type: ignore[union-attr]
            ):
                found.append(message)
        return found

    deadline = time.monotonic() + 20
    while not asked():
        assert time.monotonic() < deadline, "no mail for the question"
        time.sleep(0.2)
    time.sleep(2)  # time enough for a second mail, were the second click to make one
    mails = asked()
    assert len(mails) == 1, "one mail for the question, however often it was sent"
    assert "mei.tanaka@example.com" in mails[0]["To"]  # the account's CSM
    assert "kenji.mori@acme-logistics.example" in mails[0]["Reply-To"]
    assert "SSO settings" in str(mails[0].get_body().get_content())  # type: ignore[union-attr]


def test_people_added_get_invited_and_a_wrong_address_is_named(
    stack: tuple[dict[str, str], str, Path],
) -> None:
    env, url, _ = stack
    start(url, env, "portal-users", "contract_signed", "kickoff_held")
    wait_for_stage(env, "portal-users", "adopt")
    address = link(env, "portal-users")
    path = address.removeprefix(url)
    page = httpx.get(address)
    before = len(status_json(env, "portal-users")["academy_users"])

    wrong = httpx.post(
        f"{address}/users", data=form(page, f"{path}/users") | {"users": "ana@\nbo@x.example"}
    )
    assert wrong.status_code == 422
    assert "users.0.email" in wrong.text and "ana@" in wrong.text  # kept in the form

    added = httpx.post(
        f"{address}/users",
        data=form(page, f"{path}/users")
        | {"users": "Ana Ruiz <ana@acme.example>\nbo@acme.example"},
    )
    assert added.status_code == 303
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while len(status_json(env, "portal-users")["academy_users"]) < before + 2:
        assert datetime.now(UTC) < deadline, "the new users got no academy access"

    # And their invitations go out, one each.
    def invited() -> set[str]:
        found = set()
        for mail in Path(env["OUTBOX_DIR"]).glob("onboarding-portal-users.*academy*.eml"):
            message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
            found.add(str(message["To"]))
        return found

    while not {"Ana Ruiz <ana@acme.example>", "bo <bo@acme.example>"} <= invited():
        assert datetime.now(UTC) < deadline, f"invitations: {invited()}"
        time.sleep(0.2)


def test_a_link_that_should_not_open_shows_nothing(
    stack: tuple[dict[str, str], str, Path],
) -> None:
    env, url, _ = stack
    start(url, env, "portal-a")
    start(url, env, "portal-b")
    wait_for_stage(env, "portal-a", "depart")
    good = link(env, "portal-a")
    token = good.rsplit("/", 1)[1]
    now = datetime.now(UTC)
    refused = {
        "tampered": good[:-1] + ("0" if good[-1] != "0" else "1"),
        "another account's": f"{url}/portal/" + token.replace("portal-a", "portal-b", 1),
        "expired": f"{url}/portal/"
        + issue(
            PORTAL_SECRET,
            "portal-a",
            "kenji.mori@acme-logistics.example",
            now - timedelta(days=40),
            timedelta(days=30),
        ),
        "another secret's": f"{url}/portal/"
        + issue("not-our-secret-0123456789", "portal-a", "x@y.example", now, timedelta(days=1)),
        "no onboarding's": f"{url}/portal/"
        + issue(PORTAL_SECRET, "nobody-here", "x@y.example", now, timedelta(days=1)),
        "junk": f"{url}/portal/..%2F..%2Fetc%2Fpasswd",
    }
    for why, address in refused.items():
        answer = httpx.get(address)
        assert answer.status_code in (403, 404), why
        assert "Acme" not in answer.text and "portal-a" not in answer.text, why

    # Revoking cuts every earlier link off; the fresh one opens.
    fresh = link(env, "portal-a", "--revoke")
    assert httpx.get(good).status_code == 403
    assert httpx.get(fresh).status_code == 200


def test_while_temporal_is_down_the_page_says_to_come_back(
    stack: tuple[dict[str, str], str, Path], tmp_path: Path
) -> None:
    env, _, _ = stack
    token = issue(
        PORTAL_SECRET,
        "acme",
        "kenji.mori@acme-logistics.example",
        datetime.now(UTC),
        timedelta(days=1),
    )
    with api_running(env | {"TEMPORAL_ADDRESS": "127.0.0.1:1"}, tmp_path / "api.log") as down:
        page = httpx.get(f"{down}/portal/{token}", timeout=30)
        assert page.status_code == 503 and page.headers["Retry-After"] == "60"
        assert "try again in a few minutes" in page.text and "Acme" not in page.text
        assert page.headers["X-Frame-Options"] == "DENY"


def test_a_cancelled_onboarding_shows_a_polite_closed_page(
    stack: tuple[dict[str, str], str, Path],
) -> None:
    env, url, _ = stack
    start(url, env, "portal-gone")
    wait_for_stage(env, "portal-gone", "depart")
    address = link(env, "portal-gone")
    cancel = starter(env, "cancel", "portal-gone", "--reason", "price", "--by", "csm-007")
    assert cancel.returncode == 0, cancel.stderr
    wait_for_stage(env, "portal-gone", "cancelled")
    page = httpx.get(address)
    assert page.status_code == 200
    assert "This onboarding has ended." in page.text and "Mark done" not in page.text


def test_after_go_live_the_page_shows_what_comes_next(
    stack: tuple[dict[str, str], str, Path],
) -> None:
    env, url, _ = stack
    start(
        url,
        env,
        "portal-live",
        "contract_signed",
        "kickoff_held",
        "integration_done",
        "review_passed",
    )
    status = wait_for_stage(env, "portal-live", "completed")
    assert status["everboarding_status"] == "running"
    page = httpx.get(link(env, "portal-live"))
    assert page.status_code == 200
    assert "You are live." in page.text and "Your next digest:" in page.text
    assert "Live since" not in page.text and "Add people" not in page.text


def test_portal_link_names_what_is_wrong(stack: tuple[dict[str, str], str, Path]) -> None:
    env, _, _ = stack
    unknown = starter(env, "portal-link", "nobody-here")
    assert unknown.returncode == 1 and "no onboarding for account nobody-here" in unknown.stderr
    bad = starter(env, "portal-link", "portal-a", "--contact", "not-an-address")
    assert bad.returncode == 2 and "not an email address" in bad.stderr
    no_secret = starter(
        env | {"PORTAL_SECRET": "", "PORTAL_SECRET_FILE": "/nonexistent"}, "portal-link", "x"
    )
    assert no_secret.returncode == 1 and "PORTAL_SECRET" in no_secret.stderr


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def cancelled_after(stack: tuple[dict[str, str], str, Path]) -> Iterator[list[str]]:
    """The accounts a test starts on the demo playbook, cancelled when it ends: their steps
    fall due seconds apart, and would keep the session's dev server, and the workers of the
    tests after it, busy with their reminders."""
    accounts: list[str] = []
    yield accounts
    for account in accounts:
        starter(stack[0], "cancel", account, "--reason", "other", "--by", "tests")


@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)",
)
def test_in_a_browser_on_a_phone_and_a_desktop(
    stack: tuple[dict[str, str], str, Path], cancelled_after: list[str]
) -> None:
    """As the champion opens it, from the welcome mail: the page reads at 360 px and at
    desktop width, the task is ticked from the keyboard, and it shows done."""
    from playwright.sync_api import expect, sync_playwright

    env, url, _ = stack
    # The demo playbook, in seconds: add-users is due 45 s into Adopt, reminded 20 s before
    # (25 s in), at its due time (45 s), then every 30 s.
    cancelled_after.append("portal-browser")
    start(url, env, "portal-browser", "contract_signed", "kickoff_held", playbook="demo")
    status = wait_for_stage(env, "portal-browser", "adopt")
    entered = datetime.fromisoformat(status["stage_entered_at"])
    address = welcome_link(env, url, "portal-browser")
    reminded = ":adopt:task:add-users:reminder:"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        phone = browser.new_page(viewport={"width": 360, "height": 780})
        phone.goto(address)
        expect(phone.get_by_role("heading", name="Acme Logistics GmbH")).to_be_visible()
        expect(phone.locator('[aria-current="step"]')).to_contain_text("Set-up and first use")
        # Nothing wider than the phone: no sideways scrolling.
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        phone.screenshot(path=ARTIFACTS / "portal-phone.png", full_page=True)

        # The first reminder comes (the clock runs); then the customer ticks the task.
        deadline = time.monotonic() + 60
        while not keys(env, "portal-browser", reminded):
            assert time.monotonic() < deadline, "no reminder for add-users"
            time.sleep(0.5)
        phone.reload()
        button = phone.locator('form[action$="/tasks/add-users"] button')
        expect(button).to_contain_text("Mark done")
        button.focus()
        phone.keyboard.press("Enter")
        expect(phone.get_by_role("status")).to_contain_text("Marked done")
        expect(phone.locator('form[action$="/tasks/add-users"]')).to_have_count(0)
        phone.screenshot(path=ARTIFACTS / "portal-phone-done.png", full_page=True)

        desktop = browser.new_page(viewport={"width": 1280, "height": 900})
        desktop.goto(address)
        expect(desktop.get_by_text("Expected go-live:")).to_be_visible()
        desktop.screenshot(path=ARTIFACTS / "portal-desktop.png", full_page=True)

        japanese = browser.new_page(viewport={"width": 360, "height": 780})
        japanese.goto(start_japanese(url, env, "portal-browser-ja"))
        expect(japanese.locator("html")).to_have_attribute("lang", "ja")
        assert japanese.evaluate("document.documentElement.scrollWidth") <= 360
        japanese.screenshot(path=ARTIFACTS / "portal-phone-ja.png", full_page=True)
        browser.close()
    # Its next reminder was due 45 s into Adopt: well past that, none more came.
    time.sleep(max(0.0, (entered + timedelta(seconds=55) - datetime.now(UTC)).total_seconds()))
    assert [key.rsplit(":", 1)[1] for key in keys(env, "portal-browser", reminded)] == ["1"]
    assert status_json(env, "portal-browser")["tasks"]
