"""One customer's onboarding, from deal close to everboarding: the Temporal surface over
`core.Onboarding`, which holds every rule."""

# No `from __future__ import annotations`: the SDK reads every handler's type hints each time
# the sandbox creates a run, and string annotations are compiled and evaluated for each.
import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    # By its full name: `from workflows.onboarding import publish` would load it through
    # the package inside the sandbox, past the pass-through, once for every run (measured).
    import workflows.onboarding.publish as publish
    import workflows.onboarding.versions as versions
    from activities.assign import AssignActivities
    from activities.effects import EffectActivities
    from models.activities import Effects, EffectsDone
    from models.journey import (
        Acknowledge,
        Cancel,
        ChampionChanged,
        CompleteMilestone,
        CompleteTask,
        CsmRef,
        Engagement,
        Escalation,
        ExtendDeadline,
        HelpRequest,
        Milestone,
        MilestoneResult,
        MilestoneSignal,
        PauseClock,
        ReassignCsm,
        ResolveIncident,
        ResumeClock,
        SetChampion,
        Stage,
        TaskSignal,
        TaskStatus,
        UsersAdded,
    )
    from models.migration import AdoptPlaybook, MigrationPlan, PlaybookOffer
    from models.onboarding import OnboardingInput, OnboardingStatus
    from workflows.activity_options import EFFECTS_HEARTBEAT, run_activity
    from workflows.contract import (
        EVERBOARDING_WORKFLOW,
        ONBOARDING_WORKFLOW,
        SA_PLAN,
        SA_PLAYBOOK_VERSION,
        SA_STAGE,
        Queries,
        Signals,
        Updates,
        everboarding_id,
    )
    from workflows.metrics import count
    from workflows.onboarding.core import Onboarding, new_state
    from workflows.onboarding.publish import Publication

T = TypeVar("T")

# The history budget of one run: it continues as new from four fifths of it (or when the
# server suggests it), leaving room for the messages that arrive while it hands over. The
# happy path stays far below (about 80); a busy account's flood of engagement reaches it.
HISTORY_BUDGET = 2_500

# Patches (workflow.patched): a change to the commands a run issues, kept for the runs that
# recorded the old ones. 0.4: an ended run indexes Overdue=false and its risk as low.
FINISHED_STATE = "finished-state-v1"
HAND_OVER_AT = HISTORY_BUDGET * 4 // 5


@workflow.defn(name=ONBOARDING_WORKFLOW)
class OnboardingWorkflow:
    """Walks one account through depart → handoff → kickoff → adopt → review → expand.

    Signals (system-to-system, fire and forget; early ones are kept, duplicates ignored):
        contract_signed, kickoff_held, integration_done, review_passed, task_done,
        engagement (also course progress and support tickets), champion_changed, users_added
    Updates (a person's actions, validated): complete_milestone, complete_task,
        extend_deadline, pause, resume, cancel, set_champion, acknowledge_escalation,
        reassign_csm, add_users, resolve_incident, adopt_playbook
    Queries: status, playbook_preview

    Continues as new, carrying its whole state, before its history grows heavy. A cancel
    from Temporal (Web UI, CLI) is recorded before the run ends CANCELED.
    """

    @workflow.init
    def __init__(self, input: OnboardingInput) -> None:
        info = workflow.info()
        self._new = input.state is None
        state = input.state or new_state(input.request, workflow.now())
        # Mail keys name the chain (its first run), so a new onboarding under the same id
        # after a failed or terminated one sends its own mail.
        chain = info.first_execution_run_id
        self._o = Onboarding(input, state, f"{info.workflow_id}.{chain[:8]}", chain)
        self._input = input
        self._effects = self._batch()
        self._flushing = asyncio.Lock()
        self._assigning = asyncio.Lock()
        self._reassigning = False
        self._published: Publication | None = None
        # Search attributes are kept when the run was started with them (the starter does;
        # the time-skipping test server knows none and would fail the task).
        self._indexed = SA_STAGE in info.typed_search_attributes

    @workflow.run
    async def run(self, input: OnboardingInput) -> OnboardingStatus:
        try:
            await self._journey()
        except asyncio.CancelledError:
            # Cancelled from Temporal: the books are closed (and a CSM's update under way
            # answered) before the run ends CANCELED.
            self._o.cancel_from_temporal(workflow.now())
            await workflow.wait_condition(workflow.all_handlers_finished)
            await self._end()
            self._count("onboarding_cancelled")
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._count(f"onboarding_{self._o.journey.stage}")
        workflow.logger.info("onboarding %s", self._o.journey.stage)
        return self.status()

    async def _journey(self) -> None:
        o = self._o
        if self._new:
            self._count("onboarding_started")
            info = workflow.info()
            self._effects.opened = o.opened(info.workflow_id, info.first_execution_run_id)
        while not o.journey.ended:
            if not o.state.journey.entered:
                await self._enter()
            if not o.settled(workflow.now()):
                await self._keep_deadlines()
            if o.journey.ending or o.lapsing(workflow.now()):
                await self._end()
                return
            if o.journey.stage is Stage.EXPAND:
                o.complete(workflow.now())
                await self._look()
                await self._last_words()
                return
            workflow.logger.info("stage %s done", o.advance(workflow.now()))

    async def _enter(self) -> None:
        o, stage = self._o, self._o.journey.stage
        if o.csm.pooled:  # capacity may have freed up since: try again at every stage
            await self._assign(f"{stage}:brief")
        if stage is Stage.HANDOFF:
            await self._assign("handoff:brief")
        if o.journey.ending:  # cancelled while the roster answered: no entry actions
            return
        o.enter(workflow.now(), self._effects)
        if stage is Stage.EXPAND:
            await self._start_everboarding()

    async def _keep_deadlines(self) -> None:
        """Look at the clock, act on what is due, sleep until the next thing is due or a
        handler changes what the loop would do (the updatable-timer pattern); until the stage
        is settled, the onboarding ends, or it is time to continue as new."""
        o = self._o
        while True:
            # What this look starts from: whatever differs from it afterwards (changed by the
            # look itself, or by a handler while it awaited) is looked at again.
            seen = self._outlook()
            await self._look()
            now = workflow.now()
            if o.journey.ending or o.settled(now) or o.lapsing(now):
                return
            if self._outlook() != seen:
                continue
            wake_at = o.next_wake(now)
            with suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda seen=seen, wake_at=wake_at: self._changed(seen, wake_at),  # type: ignore[misc]
                    timeout=max(wake_at - now, timedelta(seconds=1)) if wake_at else None,
                    timeout_summary="until the next reminder or deadline",
                )
            if self._history_heavy():
                await self._continue_as_new()

    async def _look(self) -> None:
        """One pass: everything due now, carried out in one batch, then published."""
        o, now = self._o, workflow.now()
        if not o.journey.cut_short:  # users added as the onboarding completes get access too
            o.grant_waiting(now, self._effects)
        if not o.journey.ending:
            for reminder in o.remind(now, self._effects):
                self._count("onboarding_reminders_sent", stage=reminder.step.stage)
            if o.reassess(now, self._effects):
                await self._assign("high-touch:brief")  # a named CSM, copied on reminders
            if not o.journey.ending:
                for rung in o.escalate(now, self._effects):
                    raised = rung.raised
                    self._count(f"onboarding_escalations_{'raised' if raised else 'climbed'}")
                    workflow.logger.warning(
                        "escalation #%d %s, told %s: %s",
                        rung.escalation.number,
                        "raised" if raised else "climbed",
                        rung.role,
                        "; ".join(rung.escalation.reasons),
                    )
        await self._flush()
        self._publish()

    async def _end(self) -> None:
        stage = self._o.end(workflow.now(), self._effects)
        workflow.logger.warning("onboarding %s", stage)
        await self._flush()
        self._publish()
        await self._last_words()

    async def _last_words(self) -> None:
        """Before the run closes: the notices of incidents its last batches raised go out
        (a failed notice raises none, so this ends), and the incidents still open close with
        it, since nobody can retry on a closed run (the outbox keeps the failed messages)."""
        while self._effects.mails:
            await self._flush()
        if self._o.incidents.close_all(workflow.now()):
            self._publish()

    # --- side effects ---------------------------------------------------------------------

    def _batch(self) -> Effects:
        return Effects(account_id=self._o.request.account_id, at=workflow.now())

    async def _flush(self) -> None:
        """Carry out what was decided, in one activity. Once the onboarding is ending, only
        the ending's own messages go out (a reminder decided before a cancel does not)."""
        async with self._flushing:
            o, now = self._o, workflow.now()
            batch, self._effects = self._effects, self._batch()
            batch = o.complete_batch(batch, now)
            if batch.empty:
                return
            await _shielded(
                run_activity(
                    EffectActivities.carry_out,
                    batch,
                    summary=batch.summary(),
                    start_to_close=timedelta(minutes=5),
                    heartbeat=EFFECTS_HEARTBEAT,
                ),
                then=lambda done: self._carried_out(batch, done),
            )

    def _carried_out(self, batch: Effects, done: EffectsDone) -> None:
        for incident in self._o.carried_out(batch, done, workflow.now(), self._effects):
            self._count("onboarding_incidents", template=incident.template)
            workflow.logger.warning(
                "incident #%d: %s failed (%s)",
                incident.number,
                incident.template,
                incident.error_type,
            )

    async def _assign(self, brief_key: str) -> None:
        """Ask the roster for a CSM for the touch model in force (serialised with
        reassignment: both change who looks after the account)."""
        o = self._o
        if not o.state.recorded.opened:
            await self._flush()  # the roster needs the onboarding's row
        async with self._assigning:
            await _shielded(
                run_activity(
                    AssignActivities.assign_csm,
                    o.csm_request(),
                    summary=f"assign a CSM ({o.touch_model}-touch)",
                ),
                then=lambda csm: o.assigned(brief_key, o.csm.assigned(csm), self._effects),
            )

    async def _start_everboarding(self) -> None:
        o = self._o
        child_id = everboarding_id(o.request.account_id)
        try:
            await workflow.start_child_workflow(
                EVERBOARDING_WORKFLOW,
                o.everboarding_input(),
                id=child_id,
                # `starter.py announce` finds everboardings by plan.
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(SA_PLAN, o.request.plan.value)]
                )
                if self._indexed
                else None,
                # Everboarding outlives the onboarding: it runs as long as the customer stays.
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"Everboarding for {o.request.account_id}",
            )
        except WorkflowAlreadyStartedError:
            # A returning customer whose everboarding never stopped: keep that one.
            workflow.logger.info("everboarding %s already running; keeping it", child_id)
        o.journey.everboarding_started(child_id)

    # --- bookkeeping ----------------------------------------------------------------------

    def _outlook(self) -> tuple[object, ...]:
        """Everything the wait loop acts on, derived from the state: when it differs from
        what the loop last planned for, something changed and the loop looks again."""
        o, now = self._o, workflow.now()
        publication = publish.publication(o, now)
        return (
            o.settled(now),
            o.journey.ending,
            o.checklist.paused,
            o.learning.open and bool(o.state.learning.users_waiting),
            bool(self._effects.mails),
            o.state.risk.ask_for_champion and o.csm.contact is not None,
            None if o.checklist.paused else o.risk.assess(now).level,
            bool(o.unrecorded()),
            publication,
        )

    def _changed(self, seen: tuple[object, ...], wake_at: datetime | None) -> bool:
        """Wake the loop: what it acts on changed, something falls due sooner than planned,
        or the history is heavy enough to hand over to a new run."""
        next_wake = self._o.next_wake(workflow.now())
        sooner = next_wake is not None and (wake_at is None or next_wake < wake_at)
        return self._outlook() != seen or sooner or self._history_heavy()

    def _history_heavy(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested() or info.get_current_history_length() >= HAND_OVER_AT
        )

    async def _continue_as_new(self) -> None:
        # Whatever a handler decided is carried out first (its mail is not in the state);
        # nothing awaits between the last check and the hand-over.
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self._effects.decided:
                break
            await self._flush()
        o = self._o
        o.state.run += 1
        workflow.logger.info("continuing as new (run %d)", o.state.run)
        workflow.continue_as_new(self._input.model_copy(update={"state": o.state}))

    def _publish(self) -> None:
        """Keep what ops see without a worker current: the search attributes (only those that
        changed: each update is a history event) and the run's details in the Web UI."""
        ended_as_ended = not self._o.journey.ended or workflow.patched(FINISHED_STATE)
        publication = publish.publication(self._o, workflow.now(), ended_as_ended=ended_as_ended)
        if self._indexed:
            updates = publish.changed_attributes(self._published, publication)
            if updates:
                workflow.upsert_search_attributes(updates)
        if self._published is None or publication.details != self._published.details:
            workflow.set_current_details(publication.details)
        self._published = publication

    def _count(self, name: str, **attributes: str) -> None:
        request = self._o.request
        count(name, plan=str(request.plan), touch_model=str(request.touch_model), **attributes)

    # --- signals: facts from other systems --------------------------------------------------

    def _milestone(self, milestone: Milestone, signal: MilestoneSignal) -> None:
        changed = self._o.milestone_reported(
            milestone, signal.by, signal.at, workflow.now(), signal.note
        )
        if changed:
            workflow.logger.warning("%s from %s: %s", milestone, signal.by, changed)

    @workflow.signal(name=Signals.CONTRACT_SIGNED)
    def contract_signed(self, signal: MilestoneSignal) -> None:
        self._milestone(Milestone.CONTRACT_SIGNED, signal)

    @workflow.signal(name=Signals.KICKOFF_HELD)
    def kickoff_held(self, signal: MilestoneSignal) -> None:
        self._milestone(Milestone.KICKOFF_HELD, signal)

    @workflow.signal(name=Signals.INTEGRATION_DONE)
    def integration_done(self, signal: MilestoneSignal) -> None:
        self._milestone(Milestone.INTEGRATION_DONE, signal)

    @workflow.signal(name=Signals.REVIEW_PASSED)
    def review_passed(self, signal: MilestoneSignal) -> None:
        self._milestone(Milestone.REVIEW_PASSED, signal)

    @workflow.signal(name=Signals.TASK_DONE)
    def task_done(self, signal: TaskSignal) -> None:
        if not self._o.task_reported(signal.task_id, signal.by, signal.at, workflow.now()):
            workflow.logger.info("task_done for %s ignored (unknown or done)", signal.task_id)

    @workflow.signal(name=Signals.ENGAGEMENT)
    def engagement(self, signal: Engagement) -> None:
        if note := self._o.engaged(signal, workflow.now()):
            workflow.logger.info("engagement %s: %s", signal.kind, note)

    @workflow.signal(name=Signals.CHAMPION_CHANGED)
    def champion_changed(self, signal: ChampionChanged) -> None:
        if note := self._o.champion_changed(signal, workflow.now()):
            workflow.logger.warning("champion_changed: %s", note)

    @workflow.signal(name=Signals.USERS_ADDED)
    def users_added(self, signal: UsersAdded) -> None:
        if not self._o.users_added(signal.users) and self._o.journey.ending:
            workflow.logger.warning("users added by %s after the onboarding ended", signal.by)

    @workflow.signal(name=Signals.HELP_REQUESTED)
    def help_requested(self, signal: HelpRequest) -> None:
        if not self._o.help_requested(signal, workflow.now(), self._effects):
            workflow.logger.warning("help asked by %s after the onboarding ended", signal.by)

    # --- updates: a person's actions ------------------------------------------------------

    @workflow.update(name=Updates.COMPLETE_MILESTONE)
    def complete_milestone(self, update: CompleteMilestone) -> MilestoneResult:
        return self._o.milestone_completed(update, workflow.now())

    @complete_milestone.validator
    def _check_milestone(self, update: CompleteMilestone) -> None:
        self._o.journey.check_milestone(update.milestone, update.at, workflow.now())

    @workflow.update(name=Updates.COMPLETE_TASK)
    def complete_task(self, update: CompleteTask) -> TaskStatus:
        self._o.task_done(update.task_id, update.by, workflow.now(), workflow.now())
        return self._o.state.clock.tasks[update.task_id]

    @complete_task.validator
    def _check_task(self, update: CompleteTask) -> None:
        self._o.journey.check_running()
        self._o.checklist.check_done(update.task_id, self._o.request.account_id)

    @workflow.update(name=Updates.EXTEND_DEADLINE)
    def extend_deadline(self, update: ExtendDeadline) -> TaskStatus:
        return self._o.extend(update, workflow.now())

    @extend_deadline.validator
    def _check_extension(self, update: ExtendDeadline) -> None:
        o = self._o
        o.journey.check_running()
        o.checklist.check_extension(update, workflow.now(), o.request.account_id, o.journey.stage)

    @workflow.update(name=Updates.PAUSE)
    def pause(self, update: PauseClock) -> OnboardingStatus:
        self._o.checklist.pause(workflow.now())
        workflow.logger.info("clock paused by %s: %s", update.by, update.reason)
        return self.status()

    @pause.validator
    def _check_pause(self, update: PauseClock) -> None:
        self._o.journey.check_running()
        if (paused_at := self._o.state.clock.paused_at) is not None:
            raise ValueError(f"the clock is already paused since {paused_at:%Y-%m-%d %H:%M} UTC")

    @workflow.update(name=Updates.RESUME)
    def resume(self, update: ResumeClock) -> OnboardingStatus:
        self._o.resume(workflow.now())
        return self.status()

    @resume.validator
    def _check_resume(self, update: ResumeClock) -> None:
        self._o.journey.check_running()
        if not self._o.checklist.paused:
            raise ValueError("the clock is not paused")

    @workflow.update(name=Updates.CANCEL)
    def cancel(self, update: Cancel) -> OnboardingStatus:
        self._o.journey.cancel(update, workflow.now())
        return self.status()

    @cancel.validator
    def _check_cancel(self, update: Cancel) -> None:
        self._o.journey.check_cancel()

    @workflow.update(name=Updates.SET_CHAMPION)
    def set_champion(self, update: SetChampion) -> OnboardingStatus:
        self._o.name_champion(update.champion, workflow.now())
        return self.status()

    @set_champion.validator
    def _check_set_champion(self, update: SetChampion) -> None:
        self._o.journey.check_running()

    @workflow.update(name=Updates.ACKNOWLEDGE_ESCALATION)
    def acknowledge_escalation(self, update: Acknowledge) -> Escalation:
        self._o.journey.sign_of_life(workflow.now())
        return self._o.risk.acknowledge(update.by, update.note, workflow.now())

    @acknowledge_escalation.validator
    def _check_acknowledge(self, update: Acknowledge) -> None:
        self._o.journey.check_running()
        self._o.risk.check_acknowledge(self._o.request.account_id)

    @workflow.update(name=Updates.ADD_USERS)
    def add_users(self, update: UsersAdded) -> OnboardingStatus:
        self._o.users_added(update.users)
        return self.status()

    @add_users.validator
    def _check_users(self, update: UsersAdded) -> None:
        self._o.journey.check_running()

    @workflow.update(name=Updates.RESOLVE_INCIDENT)
    def resolve_incident(self, update: ResolveIncident) -> OnboardingStatus:
        self._o.resolve_incident(update, workflow.now(), self._effects)
        return self.status()

    @resolve_incident.validator
    def _check_resolve(self, update: ResolveIncident) -> None:
        self._o.journey.check_running()
        self._o.incidents.check_resolve(update)

    @workflow.update(name=Updates.REASSIGN_CSM)
    async def reassign_csm(self, update: ReassignCsm) -> CsmRef:
        """Hand the account to another CSM: reminders, escalations and open tasks follow."""
        self._reassigning = True
        try:
            async with self._assigning:
                return await self._reassign(update)
        finally:
            self._reassigning = False

    @reassign_csm.validator
    def _check_reassign(self, update: ReassignCsm) -> None:
        self._o.journey.check_running()
        self._o.csm.check_reassign(update, self._reassigning)

    async def _reassign(self, update: ReassignCsm) -> CsmRef:
        o = self._o
        try:
            o.journey.check_running()  # it may have ended while this waited its turn
        except ValueError as refused:
            raise ApplicationError(
                str(refused), type="ReassignRefused", non_retryable=True
            ) from None
        request = o.reassign_request(update, workflow.now())
        answers: list[CsmRef] = []
        try:
            await _shielded(
                run_activity(
                    AssignActivities.reassign_csm, request, summary=f"reassign to {update.to}"
                ),
                then=answers.append,
            )
        except ActivityError as error:
            # The roster refused (unknown, inactive, at capacity): nothing changed.
            cause = error.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(error)
            raise ApplicationError(message, type="ReassignRefused", non_retryable=True) from None
        o.reassigned(request.number, answers[0], update.reason, self._effects)
        await self._flush()
        return answers[0]

    @workflow.update(name=Updates.ADOPT_PLAYBOOK)
    def adopt_playbook(self, update: AdoptPlaybook) -> MigrationPlan:
        """Go on with a new version of the playbook (`starter.py migrate --apply`)."""
        plan = versions.adopt(self._o, update, workflow.now())
        plan.applied = True
        self._input = self._input.model_copy(update={"playbook": self._o.playbook})
        if self._indexed and plan.to_version:
            workflow.upsert_search_attributes([SA_PLAYBOOK_VERSION.value_set(plan.to_version)])
        workflow.logger.info(
            "playbook %s %s → %s by %s: %d change(s), %d refused",
            plan.playbook,
            plan.from_version,
            plan.to_version,
            update.by,
            len(plan.changes),
            len(plan.refused),
        )
        return plan

    @adopt_playbook.validator
    def _check_adopt(self, update: AdoptPlaybook) -> None:
        versions.check(self._o, update, workflow.now())

    # --- queries --------------------------------------------------------------------------

    @workflow.query(name=Queries.STATUS)
    def status(self) -> OnboardingStatus:
        return publish.status(self._o, workflow.now())

    @workflow.query(name=Queries.PLAYBOOK_PREVIEW)
    def playbook_preview(self, offer: PlaybookOffer) -> MigrationPlan:
        """What `adopt_playbook` would change now (`starter.py migrate --preview`)."""
        return versions.preview(self._o, offer)


async def _shielded(operation: Awaitable[T], then: Callable[[T], None]) -> None:
    """Let an activity that has started finish even if the run is cancelled meanwhile, and
    take its answer (`then`) either way: what it did is then known before the cancellation is
    recorded (see `run`)."""
    task = asyncio.ensure_future(operation)
    try:
        then(await asyncio.shield(task))
    except asyncio.CancelledError:
        then(await task)
        raise
