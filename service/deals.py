"""Starting onboardings from deals: the playbook and learning path resolved, the workflow
started once per account, and a deal delivered again told apart from another deal.

A deal's fingerprint (a hash of the deal as admitted) is kept in the run's memo. When the
account already has an onboarding, the same fingerprint means this deal started it (a
retried delivery: nothing to do) and another means a different deal (a conflict). Temporal
starts one workflow per id however many deliveries race, so N concurrent deliveries of one
deal start one onboarding and all N learn it is theirs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from models.enums import Stage
from service.errors import Conflict, Invalid, Unavailable
from workflows.contract import (
    ONBOARDING_WORKFLOW,
    SA_PLAN,
    SA_PLAYBOOK_VERSION,
    SA_STAGE,
    SA_TOUCH_MODEL,
    TASK_QUEUE,
    onboarding_id,
)

if TYPE_CHECKING:
    from infra.settings import Settings
    from models.academy import AcademyFile
    from models.journey import OnboardingRequest
    from models.onboarding import OnboardingInput
    from models.playbook import PlaybookFile

# The memo key of the deal's fingerprint (a hash: no customer data in the memo).
DEAL_MEMO = "deal_sha256"


class Playbooks:
    """The playbooks and the academy as read once for a command or a request (a batch of
    thousands reads each file once, not once a row: 2.5 ms a row, measured)."""

    def __init__(self, settings: Settings) -> None:
        self.directory = settings.playbook_dir
        self._playbooks: dict[str, PlaybookFile] = {}
        self._academy: AcademyFile | None = None

    def playbook(self, name: str) -> PlaybookFile:
        from models.playbook import load_playbook

        if name not in self._playbooks:
            self._playbooks[name] = load_playbook(self.directory, name)
        return self._playbooks[name]

    def academy(self) -> AcademyFile:
        from models.academy import load_academy

        if self._academy is None:
            self._academy = load_academy(self.directory)
        return self._academy


def workflow_input(request: OnboardingRequest, playbooks: Playbooks) -> OnboardingInput:
    """The request with its playbook and learning path resolved (PlaybookError if broken)."""
    from models.onboarding import OnboardingInput

    playbook = playbooks.playbook(request.playbook)
    academy = playbooks.academy()
    return OnboardingInput(
        request=request,
        playbook=playbook.resolve(request.playbook, request.touch_model, request.locale),
        path=academy.path_for(request.plan, request.industry, request.use_case, request.locale),
    )


def fingerprint(request: OnboardingRequest) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


class Started(StrEnum):
    NEW = "new"  # this call started the onboarding
    AGAIN = "again"  # the same deal had already started it: nothing done


@dataclass(frozen=True)
class Start:
    account_id: str
    workflow_id: str
    outcome: Started


async def start_deal(client: Client, request: OnboardingRequest, playbooks: Playbooks) -> Start:
    """Start the deal's onboarding, or find that this very deal already did. Conflict when the
    account's onboarding came from another deal; ServiceError when the playbook is broken."""
    from models.playbook import PlaybookError

    try:
        started = await start_onboarding(client, workflow_input(request, playbooks))
    except PlaybookError as error:
        raise Invalid(f"playbook: {error}") from None
    workflow_id = onboarding_id(request.account_id)
    if started:
        return Start(request.account_id, workflow_id, Started.NEW)
    description = await client.get_workflow_handle(workflow_id).describe()
    memo = await description.memo()
    if memo.get(DEAL_MEMO) != fingerprint(request):
        raise Conflict(
            f"account {request.account_id} already has an onboarding ({workflow_id}), "
            "started from another deal"
        )
    return Start(request.account_id, workflow_id, Started.AGAIN)


async def start_onboarding(client: Client, workflow_input: OnboardingInput) -> bool:
    """Start the onboarding; False when the account already has one (nothing started)."""
    request = workflow_input.request
    try:
        await client.start_workflow(
            ONBOARDING_WORKFLOW,
            workflow_input,
            id=onboarding_id(request.account_id),
            task_queue=TASK_QUEUE,
            # A retried deal does not start an onboarding that ran to its end (completed,
            # cancelled by the CSM, lapsed); one whose run failed, or was terminated or
            # cancelled in Temporal, may be started again, and starts afresh.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(SA_STAGE, Stage.DEPART.value),
                    SearchAttributePair(SA_TOUCH_MODEL, request.touch_model.value),
                    SearchAttributePair(SA_PLAN, request.plan.value),
                    # `starter.py migrate` finds the runs on an older version by it.
                    SearchAttributePair(SA_PLAYBOOK_VERSION, workflow_input.playbook.version or ""),
                ]
            ),
            memo={DEAL_MEMO: fingerprint(request)},
            static_summary=(
                f"Onboarding {request.account_id}: {request.plan} plan, "
                f"{request.touch_model}-touch, playbook {request.playbook}"
            ),
            # Fixed at start (the run's current details carry what changes); no emails.
            static_details="\n".join(
                [
                    f"**Account** {request.account_id} ({request.account_name})",
                    f"**Plan** {request.plan} · **Touch model** {request.touch_model}",
                    f"**Industry** {request.industry} · **Use case** {request.use_case}",
                    f"**Playbook** {request.playbook} · **AE** {request.account_executive.id}",
                    # A fact of the deal, true for ever: whether it is signed *now* is a
                    # milestone, in the current details.
                    (
                        f"**Contract** signed {request.contract_signed_at:%Y-%m-%d}, with the deal"
                        if request.contract_signed_at
                        else "**Contract** unsigned when the deal closed (its signature: see the"
                        " milestones in the current details)"
                    ),
                ]
            ),
        )
    except RPCError as error:
        if "search attribute" in error.message.lower():
            raise Unavailable(
                f"the namespace lacks the onboarding search attributes ({error.message}); "
                "start the worker once (it registers them) or register them by hand"
            ) from None
        raise
    except WorkflowAlreadyStartedError:
        return False
    return True
