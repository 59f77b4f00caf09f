"""Everboarding: learning never ends after onboarding."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotifyActivities
    from models.activities import EmailRequest, MailContext, MailTemplate
    from models.everboarding import EverboardingInput, EverboardingStatus
    from workflows.activity_options import run_activity

# Hand over to a fresh run well before the history gets heavy, also where the server gives
# no continue-as-new suggestion (the time-skipping test server never does).
MAX_HISTORY_EVENTS = 500


@workflow.defn
class EverboardingWorkflow:
    """Runs for as long as the account is a customer: a "keep learning" mail, then a digest
    on the playbook's cadence. Never ends by itself; continues as new to keep history short.

    Query: status
    """

    @workflow.init
    def __init__(self, input: EverboardingInput) -> None:
        self._input = input
        self._state = input.state.model_copy()
        self._next_digest_at: datetime | None = None

    @workflow.run
    async def run(self, input: EverboardingInput) -> None:
        if not self._state.welcomed:
            await self._mail(MailTemplate.KEEP_LEARNING, "keep-learning")
            self._state.welcomed = True
        while True:
            self._next_digest_at = workflow.now() + input.cadence
            await workflow.sleep(input.cadence, summary="until the next learning digest")
            self._state.digests_sent += 1
            await self._mail(MailTemplate.DIGEST, f"digest:{self._state.digests_sent}")
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() > MAX_HISTORY_EVENTS
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(input.model_copy(update={"state": self._state}))

    async def _mail(self, template: MailTemplate, key: str) -> None:
        request = self._input.request
        await run_activity(
            NotifyActivities.send_email,
            EmailRequest(
                key=f"{workflow.info().workflow_id}:{key}",
                account_id=request.account_id,
                template=template,
                to=request.champion,
                context=MailContext(
                    account=request, csm=self._input.csm, digest_number=self._state.digests_sent
                ),
            ),
            summary=f"mail: {template}",
        )

    @workflow.query
    def status(self) -> EverboardingStatus:
        return EverboardingStatus(
            account_id=self._input.request.account_id,
            digests_sent=self._state.digests_sent,
            next_digest_at=self._next_digest_at,
        )
