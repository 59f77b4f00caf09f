"""Everboarding: learning never ends after onboarding."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotifyActivities
    from activities.records import RecordActivities
    from models.academy import CoursePlan
    from models.activities import ChurnRecord, EmailRequest, MailContext, MailTemplate
    from models.everboarding import (
        Churn,
        EverboardingInput,
        EverboardingStatus,
        FeatureAnnouncement,
    )
    from models.journey import Contact, Engagement, EngagementKind
    from workflows.activity_options import run_activity
    from workflows.engagement import record_support_ticket
    from workflows.metrics import count


@workflow.defn
class EverboardingWorkflow:
    """Runs for as long as the account is a customer: a "keep learning" mail, then on the
    playbook's cadence a digest with the next advanced courses of the account's path and the
    new features of its plan; adoption check-ins for the CSM of high-touch accounts.
    Continues as new (state carried whole) before its history grows heavy.

    Signals: announce_feature, engagement (course progress), customer_churned (ends it)
    Query: status
    """

    @workflow.init
    def __init__(self, input: EverboardingInput) -> None:
        self._input = input
        self._state = input.state.model_copy(deep=True)
        self._churn: Churn | None = None

    @workflow.run
    async def run(self, input: EverboardingInput) -> None:
        state = self._state
        if not state.welcomed:
            await self._mail(MailTemplate.KEEP_LEARNING, "keep-learning", self._champion)
            state.welcomed = True
        now = workflow.now()
        state.next_digest_at = state.next_digest_at or now + input.cadence
        if input.checkin_every and input.csm is not None:
            state.next_checkin_at = state.next_checkin_at or now + input.checkin_every
        while self._churn is None:
            self._publish()
            wake_at = min(t for t in (state.next_digest_at, state.next_checkin_at) if t)
            with suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._churn is not None,
                    timeout=max(wake_at - workflow.now(), timedelta(seconds=1)),
                    timeout_summary="until the next learning digest",
                )
            if self._churn is not None:
                break
            now = workflow.now()
            if state.next_digest_at <= now:
                await self._digest()
            if state.next_checkin_at is not None and state.next_checkin_at <= now:
                await self._checkin()
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() > input.history_limit
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._churn is None:
                    workflow.continue_as_new(input.model_copy(update={"state": state}))
        await self._let_go(self._churn)

    async def _digest(self) -> None:
        state = self._state
        state.digests_sent += 1
        state.next_digest_at = workflow.now() + self._input.cadence
        features, state.pending_features = state.pending_features, []
        await self._mail(
            MailTemplate.DIGEST,
            f"digest:{state.digests_sent}",
            self._champion,
            courses=self._next_courses(),
            features=features,
        )

    async def _checkin(self) -> None:
        state = self._state
        csm = self._input.csm
        assert csm is not None and self._input.checkin_every is not None
        state.checkins_sent += 1
        state.next_checkin_at = workflow.now() + self._input.checkin_every
        await self._mail(
            MailTemplate.ADOPTION_CHECKIN,
            f"checkin:{state.checkins_sent}",
            Contact(name=csm.name, email=csm.email),
            courses=self._next_courses(),
            features=state.pending_features,
            number=state.checkins_sent,
        )

    async def _let_go(self, churn: Churn) -> None:
        """The customer left: record it for the retention figures, thank them, stop."""
        request = self._input.request
        count("everboarding_churned", plan=str(request.plan), touch_model=str(request.touch_model))
        await run_activity(
            RecordActivities.record_churn,
            ChurnRecord(account_id=self._input.request.account_id, churn=churn),
            summary=f"record churn ({churn.reason})",
        )
        await self._mail(MailTemplate.FAREWELL, "churned:farewell", self._champion)
        await workflow.wait_condition(workflow.all_handlers_finished)

    def _next_courses(self) -> list[CoursePlan]:
        """The advanced courses of the path not finished yet, in catalogue order."""
        done = self._state.courses_done
        return [
            course
            for course in self._input.path.level("advanced")
            if course.id not in done
            and not all(f"{course.id}/{module.id}" in done for module in course.modules)
        ][: self._input.suggest]

    @property
    def _champion(self) -> Contact:
        return self._input.request.champion

    async def _mail(
        self,
        template: MailTemplate,
        key: str,
        to: Contact,
        courses: list[CoursePlan] | None = None,
        features: list[FeatureAnnouncement] | None = None,
        number: int | None = None,
    ) -> None:
        request = self._input.request
        await run_activity(
            NotifyActivities.send_email,
            EmailRequest(
                key=f"{workflow.info().workflow_id}:{key}",
                account_id=request.account_id,
                template=template,
                to=to,
                context=MailContext(
                    account=request,
                    csm=self._input.csm,
                    digest_number=self._state.digests_sent if number is None else number,
                    path=self._input.path,
                    courses=courses or [],
                    features=features or [],
                    now=workflow.now(),
                ),
            ),
            summary=f"mail: {template}",
        )

    @workflow.signal
    def announce_feature(self, feature: FeatureAnnouncement) -> None:
        """Kept for the next digest; an id seen before, or for another plan, is ignored."""
        state = self._state
        if feature.id in state.features_seen:
            return
        if self._input.request.plan not in feature.plans:
            workflow.logger.info("feature %s is not in plan %s", feature.id, feature.plans)
            return
        state.features_seen.append(feature.id)
        state.pending_features.append(feature)
        self._publish()

    @workflow.signal
    async def engagement(self, signal: Engagement) -> None:
        if signal.kind is EngagementKind.COURSE_COMPLETED and signal.value:
            self._state.courses_done.setdefault(signal.value, signal.at or workflow.now())
            self._publish()
        await record_support_ticket(self._input.request.account_id, signal)

    @workflow.signal
    def customer_churned(self, churn: Churn) -> None:
        if self._churn is None:
            self._churn = churn.model_copy(update={"at": churn.at or workflow.now()})

    def _publish(self) -> None:
        """The run's current details in the Web UI (no PII): what ops ask of an everboarding."""
        state = self._state

        def when(at: datetime | None) -> str:
            return f"{at:%Y-%m-%d %H:%M} UTC" if at else "-"

        workflow.set_current_details(
            "  \n".join(
                [
                    f"**Digests sent:** {state.digests_sent}, next {when(state.next_digest_at)}",
                    f"**Check-ins sent:** {state.checkins_sent}, "
                    f"next {when(state.next_checkin_at)}",
                    f"**Courses done:** {len(state.courses_done)}; next suggested: "
                    + (", ".join(c.id for c in self._next_courses()) or "none"),
                    "**Features waiting for the next digest:** "
                    + (", ".join(f.id for f in state.pending_features) or "none"),
                ]
            )
        )

    @workflow.query
    def status(self) -> EverboardingStatus:
        state = self._state
        return EverboardingStatus(
            account_id=self._input.request.account_id,
            digests_sent=state.digests_sent,
            next_digest_at=state.next_digest_at,
            checkins_sent=state.checkins_sent,
            next_checkin_at=state.next_checkin_at,
            next_courses=self._next_courses(),
            pending_features=state.pending_features,
            courses_done=sorted(state.courses_done),
            churned=self._churn,
        )
