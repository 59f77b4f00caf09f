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
    names = {path.stem for path in HISTORIES}
    # Each generation of the workflows: the first journey (before `deadlines-v1`), the one
    # before `academy-v1`, the one before `scorecard-v1` (a support ticket that was not
    # recorded), and today's; each as the README journey on the dev server (search
    # attributes kept current) and as a run with reminders and an escalation.
    assert {
        "onboarding-acme-before-deadlines",
        "everboarding-acme-first",
        "onboarding-acme-before-academy",
        "everboarding-acme-before-academy",
        "onboarding-acme-escalation-before-academy",
        "onboarding-acme-before-scorecard",
        "everboarding-acme-before-scorecard",
        "onboarding-acme",
        "everboarding-acme",
        "onboarding-acme-escalation",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_without_nondeterminism(path: Path) -> None:
    workflow_id = path.stem
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history)
