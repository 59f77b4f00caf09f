"""Everboarding: learning never ends after onboarding."""

# No `from __future__ import annotations`: see workflows/onboarding/workflow.py.
from contextlib import suppress
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.effects import EffectActivities
    from models.academy import CoursePlan
    from models.activities import Effects, Mail, MailContext, MailTemplate
    from models.everboarding import (
        Churn,
        EverboardingInput,
        EverboardingStatus,
        FeatureAnnouncement,
    )
    from models.journey import Contact, Engagement, EngagementKind
    from workflows.activity_options import EFFECTS_HEARTBEAT, run_activity
    from workflows.contract import EVERBOARDING_WORKFLOW, Queries, Signals
    from workflows.metrics import count
    from workflows.onboarding.readmodel import note_ticket, ticket_records
    from workflows.onboarding.stages import bound


@workflow.defn(name=EVERBOARDING_WORKFLOW)
class EverboardingWorkflow:
    """Runs for as long as the account is a customer: a "keep learning" mail, then on the
    playbook's cadence a digest with the next advanced courses of the account's path and the
    new features of its plan; adoption check-ins for the CSM of high-touch accounts.
    Continues as new (state carried whole) before its history grows heavy.

    Signals: announce_feature, engagement (course progress, support tickets), customer_churned
    (ends it)
    Query: status
    """

    @workflow.init
    def __init__(self, input: EverboardingInput) -> None:
        info = workflow.info()
        self._input = input
        self._state = input.state.model_copy(deep=True)
        self._churn: Churn | None = None
        self._prefix = f"{info.workflow_id}.{info.first_execution_run_id[:8]}"
        self._started_at = input.state.started_at or workflow.now()
        self._state.started_at = self._started_at

    @workflow.run
    async def run(self, input: EverboardingInput) -> None:
        state = self._state
        effects = self._batch()
        if not state.welcomed:
            self._mail(effects, MailTemplate.KEEP_LEARNING, "keep-learning", self._champion)
            state.welcomed = True
        now = workflow.now()
        state.next_digest_at = state.next_digest_at or now + input.cadence
        if input.checkin_every and input.csm is not None:
            state.next_checkin_at = state.next_checkin_at or now + input.checkin_every
        while self._churn is None:
            now = workflow.now()
            if state.next_digest_at <= now:
                self._digest(effects)
            if state.next_checkin_at is not None and state.next_checkin_at <= now:
                self._checkin(effects)
            await self._carry_out(effects)
            effects = self._batch()
            self._publish()
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() > input.history_limit
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._churn is None:
                    workflow.continue_as_new(input.model_copy(update={"state": state}))
            wake_at = min(t for t in (state.next_digest_at, state.next_checkin_at) if t)
            with suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._churn is not None or bool(state.tickets),
                    timeout=max(wake_at - workflow.now(), timedelta(seconds=1)),
                    timeout_summary="until the next learning digest",
                )
        await self._let_go(self._churn)

    def _digest(self, effects: Effects) -> None:
        state = self._state
        state.digests_sent += 1
        state.next_digest_at = workflow.now() + self._input.cadence
        features, state.pending_features = state.pending_features, []
        self._mail(
            effects,
            MailTemplate.DIGEST,
            f"digest:{state.digests_sent}",
            self._champion,
            courses=self._next_courses(),
            features=features,
            digest_number=state.digests_sent,
        )

    def _checkin(self, effects: Effects) -> None:
        state = self._state
        csm = self._input.csm
        assert csm is not None and self._input.checkin_every is not None
        state.checkins_sent += 1
        state.next_checkin_at = workflow.now() + self._input.checkin_every
        self._mail(
            effects,
            MailTemplate.ADOPTION_CHECKIN,
            f"checkin:{state.checkins_sent}",
            Contact(name=csm.name, email=csm.email),
            courses=self._next_courses(),
            features=state.pending_features,
            digest_number=state.checkins_sent,
        )

    async def _let_go(self, churn: Churn) -> None:
        """The customer left: record it for the retention figures, thank them, stop."""
        request = self._input.request
        count("everboarding_churned", plan=str(request.plan), touch_model=str(request.touch_model))
        effects = self._batch()
        effects.churn = churn
        self._mail(effects, MailTemplate.FAREWELL, "churned:farewell", self._champion)
        await self._carry_out(effects)
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

    def _batch(self) -> Effects:
        return Effects(account_id=self._input.request.account_id, at=workflow.now())

    def _mail(
        self, effects: Effects, template: MailTemplate, key: str, to: Contact, **parts: object
    ) -> None:
        effects.mails.append(
            Mail.model_validate(
                {"key": f"{self._prefix}:{key}", "template": template, "to": to} | parts
            )
        )

    async def _carry_out(self, effects: Effects) -> None:
        """Hand the pass's mail and records (support tickets waiting) to one activity."""
        state = self._state
        effects.tickets = ticket_records(effects.account_id, state.tickets)
        if effects.empty:
            return
        if effects.mails:
            effects.context = MailContext(
                account=self._input.request,
                csm=self._input.csm,
                path=self._input.path,
                now=workflow.now(),
            )
        done = await run_activity(
            EffectActivities.carry_out,
            effects,
            summary=effects.summary(),
            start_to_close=timedelta(minutes=5),
            heartbeat=EFFECTS_HEARTBEAT,
        )
        for failure in done.failed:
            # Digests recur: the next one goes on its own; the outbox row says why this failed.
            count("everboarding_mail_failed", template=failure.template)
            workflow.logger.warning("%s failed (%s)", failure.template, failure.error_type)
        recorded = {record.ticket for record in effects.tickets}
        state.tickets = [(t, at) for t, at in state.tickets if t not in recorded]

    @workflow.signal(name=Signals.ANNOUNCE_FEATURE)
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

    @workflow.signal(name=Signals.ENGAGEMENT)
    def engagement(self, signal: Engagement) -> None:
        """Course progress is kept; a support ticket goes on record (once per id); other
        engagement changes nothing here."""
        at = self._bounded(signal.at, "engagement")
        if signal.kind is EngagementKind.COURSE_COMPLETED and signal.value:
            self._state.courses_done.setdefault(signal.value, at)
            self._publish()
        if signal.kind is EngagementKind.SUPPORT_TICKET:
            note_ticket(self._state.tickets, signal.value or at.isoformat(), at)

    @workflow.signal(name=Signals.CUSTOMER_CHURNED)
    def customer_churned(self, churn: Churn) -> None:
        if self._churn is None:
            self._churn = churn.model_copy(update={"at": self._bounded(churn.at, "churn")})

    def _bounded(self, at: datetime | None, what: str) -> datetime:
        """An outside time: never in the future, never before this everboarding started."""
        moment, changed = bound(at, self._started_at, workflow.now())
        if changed:
            workflow.logger.warning("%s: %s", what, changed)
        return moment

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

    @workflow.query(name=Queries.STATUS)
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
