"""Histories of real runs, committed under tests/histories/, must replay on today's workflow
code: a change that would break running onboardings fails here (version it with
`workflow.patched` instead)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, workflow_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_fixtures_are_there() -> None:
    """Release 0.2.0's baseline: the README journey on the dev server (search attributes
    kept current) and runs that go off the happy path, recorded by the tests that drive them
    (RECORD_HISTORIES=1)."""
    names = {path.stem for path in HISTORIES}
    assert {
        "onboarding-acme",  # the README journey, with a support ticket
        "everboarding-acme",
        "onboarding-acme-escalation",  # quiet, escalated, climbed, acknowledged
        "onboarding-acme-pause",  # paused and resumed with an escalation open
        "onboarding-acme-queued-then-reassigned",  # pooled, retried, reassigned by hand
        "onboarding-acme-users",  # users added mid-journey
        "onboarding-acme-champion",  # the champion left; a new one named
        "onboarding-acme-cancel",  # cancelled by the CSM
        "onboarding-acme-cancelled-in-temporal",
        "onboarding-acme-lapsed",
        "onboarding-acme-continued-run1",  # a journey handed over to new runs
        "onboarding-acme-continued-run2",
        "everboarding-acme-continued-run1",
        "everboarding-acme-continued-run2",
        # 0.3.0
        "onboarding-acme-incident",  # mail refused for good: incidents, retried, dismissed
        # 0.4.0
        "onboarding-acme-finished",  # completed with steps overdue: patch finished-state-v1
        "onboarding-acme-migrated",  # a new playbook version adopted mid-Adopt, then reminded
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_without_nondeterminism(path: Path) -> None:
    # The run's own id (`onboarding-acme-incident.json` was `onboarding-acme`): mail keys
    # start with it, and an incident is matched to its mail by key.
    workflow_id = "-".join(path.stem.split("-")[:2])
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history)
