"""An incident as ops meet it, through the CLI against the dev server and a worker process:
the mail server refuses the champion's address for good; `list --incidents`, `status` and
`doctor` show it; the CSM fixes the address and `incident retry` sends the message."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.conftest import Mailbox, deal, deal_file, starter, status_json

ACME = deal("acme")


@pytest.fixture
def refusing_smtp(app_env: dict[str, str], smtp: tuple[Mailbox, int]) -> Mailbox:
    mailbox, port = smtp
    mailbox.refuse.add(str(ACME.champion.email))
    app_env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_TLS="none")
    return mailbox


def wait_for(check, within: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_an_incident_is_found_explained_and_retried_from_the_cli(
    refusing_smtp: Mailbox,
    app_env: dict[str, str],
    worker_process: subprocess.Popen[str],
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    mailbox = refusing_smtp
    document = deal_file(tmp_path, "acme", account_id="refused-co")
    assert starter(app_env, "start", "--from-file", document).returncode == 0
    wait_for(lambda: status_json(app_env, "refused-co")["incidents"])

    listed = starter(app_env, "list", "--incidents")
    assert "refused-co" in listed.stdout and "1 incident(s)" in listed.stdout
    status = starter(app_env, "status", "refused-co").stdout
    assert "Incident #1" in status and "RecipientRefused" in status
    assert "warn incidents: 1 onboarding(s)" in starter(app_env, "doctor").stdout

    fixed = starter(
        app_env,
        "champion",
        "refused-co",
        "--name",
        "Ana Ruiz",
        "--email",
        "ana@acme.example",
        "--by",
        "csm-007",
    )
    assert fixed.returncode == 0, fixed.stderr
    retried = starter(app_env, "incident", "retry", "refused-co", "--by", "csm-007")
    assert retried.returncode == 0, retried.stderr
    assert (
        "accepted: every open incident of refused-co sent again under a new key" in retried.stdout
    )
    wait_for(lambda: "onboarding-refused-co:depart:what-to-expect:retry1" in mailbox.received())
    assert (
        mailbox.one("onboarding-refused-co:depart:what-to-expect:retry1")["To"]
        .addresses[0]
        .addr_spec
        == "ana@acme.example"
    )

    again = starter(app_env, "incident", "retry", "refused-co", "--number", "1")
    assert again.returncode == 1
    assert "rejected: refused-co has no open incident" in again.stderr
    assert "refused-co" not in starter(app_env, "list", "--incidents").stdout
    starter(app_env, "cancel", "refused-co", "--reason", "other", "--by", "csm-007")
