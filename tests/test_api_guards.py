"""The API's guards and its events, without a server: signatures (rotation, staleness, the
per-source secret), tokens, the rate buckets, and events checked as a whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import HTTPException
from pydantic import ValidationError

from api.guards import RateLimit, Tokens, Verifier, read_claim, sign, signature_header
from models.events import MAX_EVENTS, admit_events
from models.journey import Engagement, MilestoneSignal
from models.playbook import format_validation_error
from tests.conftest import ROOT

NOW = 1_796_000_000.0
BODY = b'{"account_id": "acme"}'


def status_of(call: object) -> int:
    with pytest.raises(HTTPException) as refused:
        call()  # type: ignore[operator]
    return refused.value.status_code


def test_a_signature_holds_for_the_exact_body_and_the_sources_own_secret() -> None:
    verifier = Verifier("shared-secret-0123456", {"hubspot": "hubspot-secret-012345"})
    claim = read_claim(signature_header("shared-secret-0123456", BODY, NOW), NOW)
    verifier.check("salesforce", claim, BODY)  # no secret of its own: the shared one
    assert status_of(lambda: verifier.check("salesforce", claim, BODY + b" ")) == 401
    assert status_of(lambda: verifier.check("hubspot", claim, BODY)) == 401

    own = read_claim(signature_header("hubspot-secret-012345", BODY, NOW), NOW)
    verifier.check("hubspot", own, BODY)


def test_a_sender_rotating_its_secret_may_sign_with_both() -> None:
    verifier = Verifier(None, {"crm": "the-new-secret-0123456"})
    old, new = (
        sign("the-old-secret-0123456", int(NOW), BODY),
        sign("the-new-secret-0123456", int(NOW), BODY),
    )
    verifier.check("crm", read_claim(f"t={int(NOW)},v1={old},v1={new}", NOW), BODY)
    only_old = read_claim(f"t={int(NOW)},v1={old}", NOW)
    assert status_of(lambda: verifier.check("crm", only_old, BODY)) == 401
    # A source with no secret anywhere cannot sign at all.
    assert status_of(lambda: verifier.check("other", only_old, BODY)) == 401


@pytest.mark.parametrize(
    "header",
    [None, "", "v1=abc", "t=abc,v1=abc", f"t={int(NOW)}", f"t={int(NOW)},t=1,v1=ab"],
)
def test_a_malformed_signature_header_is_refused_before_the_body(header: str | None) -> None:
    assert status_of(lambda: read_claim(header, NOW)) == 401


@pytest.mark.parametrize(("offset", "status"), [(-301, 401), (-299, None), (299, None), (301, 401)])
def test_a_signature_is_good_for_five_minutes_either_way(offset: int, status: int | None) -> None:
    header = signature_header("shared-secret-0123456", BODY, NOW + offset)
    if status is None:
        read_claim(header, NOW)
    else:
        assert status_of(lambda: read_claim(header, NOW)) == status


def test_a_token_names_who_acts() -> None:
    tokens = Tokens({"csm-007": "token-of-mei-0123456", "lead": "token-of-lead-012345"})
    assert tokens.who("Bearer token-of-lead-012345") == "lead"
    assert tokens.who("bearer token-of-mei-0123456") == "csm-007"
    for wrong in (None, "", "token-of-mei-0123456", "Basic token-of-mei-0123456", "Bearer x"):
        assert status_of(lambda wrong=wrong: tokens.who(wrong)) == 401


def test_a_source_gets_bursts_of_twice_its_rate_then_waits() -> None:
    limit = RateLimit(rate=2)
    for _ in range(4):  # the burst
        limit.take("source hubspot", 100.0)
    with pytest.raises(HTTPException) as refused:
        limit.take("source hubspot", 100.0)
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": "1"}
    limit.take("source salesforce", 100.0)  # another source has its own bucket
    limit.take("source hubspot", 100.5)  # half a second at 2/s: one more
    assert status_of(lambda: limit.take("source hubspot", 100.5)) == 429


def test_events_become_the_signals_the_workflow_takes() -> None:
    events = admit_events(
        b'[{"type": "kickoff_held", "note": "went well"},'
        b' {"type": "engagement", "kind": "login", "count": 12},'
        b' {"type": "support_ticket", "ticket": "T-9"}]'
    )
    signals = [event.signal("zoom") for event in events]
    assert signals[0] == ("kickoff_held", MilestoneSignal(by="zoom", note="went well"))
    assert signals[1] == ("engagement", Engagement(kind="login", count=12))
    assert signals[2] == ("engagement", Engagement(kind="support_ticket", value="T-9"))


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"type": "review_passed", "at": "2026-12-01T09:00"}', "at: needs a time zone"),
        (b'{"type": "engagement", "kind": "login", "count": 0}', "count: Input should be"),
        (b'[{"type": "kickoff_held"}, 7]', '1: an event is an object, {"type": ...}'),
        (b'{"type": "task_done", "task_id": "a\\u0007b"}', "task_id:"),
        (b"[]", "List should have at least 1 item"),
        (b"{", "Invalid JSON"),
        (b"[" + b",".join([b'{"type": "kickoff_held"}'] * (MAX_EVENTS + 1)) + b"]", "at most 100"),
    ],
)
def test_a_wrong_event_is_named(body: bytes, said: str) -> None:
    with pytest.raises(ValidationError) as refused:
        admit_events(body)
    assert said in format_validation_error(refused.value)


def test_the_api_reads_the_playbooks_again_only_after_an_edit(tmp_path: Path) -> None:
    import os
    import shutil

    from api.state import ApiState
    from infra.settings import Settings

    shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")
    api = ApiState(Settings(playbook_dir=tmp_path / "playbooks"))
    first = api.playbooks()
    assert api.playbooks() is first
    edited = tmp_path / "playbooks" / "standard.toml"
    os.utime(edited, (edited.stat().st_atime, edited.stat().st_mtime + 10))
    assert api.playbooks() is not first
