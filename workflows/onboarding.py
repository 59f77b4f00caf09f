"""One customer's onboarding, from deal close to everboarding."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.assign import AssignActivities
    from activities.notify import NotifyActivities
    from activities.records import RecordActivities
    from models.activities import (
        Checklist,
        CsmRequest,
        EmailRequest,
        HandoffRecord,
        MailContext,
        MailTemplate,
        OnboardingOpened,
        StageChange,
        TaskDue,
    )
    from models.everboarding import EverboardingInput
    from models.journey import (
        CompleteMilestone,
        Contact,
        CsmRef,
        Milestone,
        MilestoneRecord,
        MilestoneResult,
        MilestoneSignal,
        OnboardingInput,
        OnboardingStatus,
        Stage,
        StageVisit,
    )
    from workflows import MEMO_CSM, MEMO_NEXT_DEADLINE, MEMO_STAGE, everboarding_id
    from workflows.activity_options import run_activity
    from workflows.everboarding import EverboardingWorkflow

# The milestone that ends each stage that waits for one.
STAGE_MILESTONE = {milestone.stage: milestone for milestone in Milestone}


@workflow.defn
class OnboardingWorkflow:
    """Walks one account through depart → handoff → kickoff → adopt → review → expand.

    Signals (system-to-system, fire and forget; early ones are kept, duplicates ignored):
        contract_signed, kickoff_held, integration_done, review_passed
    Update (the CSM's interface, validated): complete_milestone
    Query: status
    """

    @workflow.init
    def __init__(self, input: OnboardingInput) -> None:
        self._request = input.request
        self._playbook = input.playbook
        now = workflow.now()
        self._started_at = now
        self._stage = Stage.DEPART
        self._history = [StageVisit(stage=Stage.DEPART, entered_at=now)]
        self._milestones: dict[Milestone, MilestoneRecord] = {}
        self._csm: CsmRef | None = None
        self._everboarding_id: str | None = None
        if input.request.contract_signed_at is not None:
            self._milestones[Milestone.CONTRACT_SIGNED] = MilestoneRecord(
                at=input.request.contract_signed_at,
                by=input.request.account_executive.id,
                note="signed before the onboarding started",
                recorded_at=now,
            )

    @workflow.run
    async def run(self, input: OnboardingInput) -> OnboardingStatus:
        self._publish()
        await run_activity(
            RecordActivities.open_onboarding,
            OnboardingOpened(
                request=self._request,
                workflow_id=workflow.info().workflow_id,
                playbook=self._playbook.name,
                started_at=self._started_at,
            ),
            summary="open the onboarding record",
        )
        await self._record_stage(previous=None)
        stage_actions = {
            Stage.DEPART: self._depart,
            Stage.HANDOFF: self._handoff,
            Stage.KICKOFF: self._kickoff,
            Stage.ADOPT: self._adopt,
            Stage.REVIEW: self._review,
            Stage.EXPAND: self._expand,
        }
        while self._stage is not Stage.COMPLETED:
            stage = self._stage
            await stage_actions[stage]()
            milestone = STAGE_MILESTONE.get(stage)
            if milestone is not None:
                if self._playbook.stage(stage).automated and milestone not in self._milestones:
                    self._record(milestone, by="playbook", note="automated for this touch model")
                await workflow.wait_condition(lambda m=milestone: m in self._milestones)  # type: ignore[misc]
            await self._advance()
        # Let a late update finish before the run closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    # --- the stages' entry actions -------------------------------------------------------

    async def _depart(self) -> None:
        await self._mail(MailTemplate.WHAT_TO_EXPECT, "depart:what-to-expect", self._champion)

    async def _handoff(self) -> None:
        self._csm = await run_activity(
            AssignActivities.assign_csm,
            CsmRequest(account_id=self._request.account_id, touch_model=self._request.touch_model),
            summary="assign a CSM",
        )
        self._publish()
        await run_activity(
            RecordActivities.record_handoff,
            HandoffRecord(
                account_id=self._request.account_id,
                csm_id=self._csm.id,
                notes=self._request.goals,
            ),
            summary="record the AE's handoff notes",
        )
        csm = Contact(name=self._csm.name, email=self._csm.email)
        await self._mail(MailTemplate.HANDOFF_BRIEF, "handoff:brief", csm)

    async def _kickoff(self) -> None:
        checklist = self._checklist()
        await run_activity(
            RecordActivities.create_checklist,
            Checklist(account_id=self._request.account_id, stage=Stage.KICKOFF, tasks=checklist),
            summary=f"create the customer's checklist ({len(checklist)} tasks)",
        )
        await self._mail(MailTemplate.WELCOME, "kickoff:welcome", self._champion, tasks=checklist)

    async def _adopt(self) -> None:
        # The customer does the work; reminders and risk watching arrive with the next
        # version of this workflow.
        pass

    async def _review(self) -> None:
        assert self._csm is not None
        csm = Contact(name=self._csm.name, email=self._csm.email)
        await self._mail(MailTemplate.REVIEW_CHECKLIST, "review:checklist", csm)

    async def _expand(self) -> None:
        await self._mail(MailTemplate.EXPAND, "expand:next-steps", self._champion)
        child_id = everboarding_id(self._request.account_id)
        try:
            await workflow.start_child_workflow(
                EverboardingWorkflow.run,
                EverboardingInput(
                    request=self._request,
                    csm=self._csm,
                    cadence=self._playbook.everboarding.cadence,
                ),
                id=child_id,
                # Everboarding outlives the onboarding: it runs as long as the customer stays.
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"Everboarding for {self._request.account_id}",
            )
        except WorkflowAlreadyStartedError:
            # A returning customer whose everboarding never stopped: keep that one.
            workflow.logger.info("everboarding %s already running; keeping it", child_id)
        self._everboarding_id = child_id

    # --- moving through the journey ------------------------------------------------------

    async def _advance(self) -> None:
        # State changes before any await, so a query right after the milestone sees the new
        # stage even while the bookkeeping activities run.
        now = workflow.now()
        previous = self._stage
        self._history[-1].exited_at = now
        self._stage = previous.next
        self._history.append(StageVisit(stage=self._stage, entered_at=now))
        self._publish()
        await self._record_stage(previous=previous)

    def _publish(self) -> None:
        """Keep what ops see without a worker current: the memo (read by `starter.py list`
        from visibility) and the run's details in the Web UI. No PII in either."""
        deadline = self._next_deadline()
        workflow.upsert_memo(
            {
                MEMO_STAGE: self._stage.value,
                MEMO_CSM: self._csm.id if self._csm else None,
                MEMO_NEXT_DEADLINE: deadline.isoformat() if deadline else None,
            }
        )
        lines = [
            f"**Stage:** {self._stage}",
            f"**Next deadline:** {f'{deadline:%Y-%m-%d %H:%M} UTC' if deadline else '-'}",
            f"**CSM:** {self._csm.id if self._csm else 'not assigned yet'}",
            "",
            *(f"- {'✅' if m in self._milestones else '⬜'} {m}" for m in Milestone),
        ]
        workflow.set_current_details("  \n".join(lines))

    async def _record_stage(self, previous: Stage | None) -> None:
        def at(milestone: Milestone) -> datetime | None:
            return self._milestones[milestone].at if self._applied(milestone) else None

        await run_activity(
            RecordActivities.record_stage,
            StageChange(
                account_id=self._request.account_id,
                stage=self._stage,
                previous=previous,
                at=self._history[-1].entered_at,
                contract_signed_at=at(Milestone.CONTRACT_SIGNED),
                kickoff_at=at(Milestone.KICKOFF_HELD),
                first_value_at=at(Milestone.INTEGRATION_DONE),
            ),
            summary=f"record stage {self._stage}",
        )

    def _checklist(self) -> list[TaskDue]:
        """Every task from kickoff on, dated on the planned timeline: each stage starts when
        the previous one's deadline ends, so the customer sees a date on every step."""
        tasks = []
        stage_start = self._history[-1].entered_at
        for stage in (Stage.KICKOFF, Stage.ADOPT, Stage.REVIEW):
            plan = self._playbook.stage(stage)
            tasks += [
                TaskDue(
                    id=task.id,
                    title=task.title,
                    owner=task.owner,
                    required=task.required,
                    due_at=stage_start + task.due,
                )
                for task in plan.tasks
            ]
            stage_start += plan.deadline
        return tasks

    async def _mail(
        self, template: MailTemplate, key: str, to: Contact, tasks: list[TaskDue] | None = None
    ) -> None:
        await run_activity(
            NotifyActivities.send_email,
            EmailRequest(
                key=f"{workflow.info().workflow_id}:{key}",
                account_id=self._request.account_id,
                template=template,
                to=to,
                context=MailContext(
                    account=self._request,
                    csm=self._csm,
                    due_at=self._next_deadline(),
                    tasks=tasks or [],
                ),
            ),
            summary=f"mail: {template}",
        )

    @property
    def _champion(self) -> Contact:
        return self._request.champion

    # --- milestones ----------------------------------------------------------------------

    def _record(
        self, milestone: Milestone, by: str, at: datetime | None = None, note: str | None = None
    ) -> MilestoneRecord | None:
        """Keep a milestone fact once; the stage loop applies it when its stage is reached."""
        if milestone in self._milestones:
            workflow.logger.info("duplicate %s from %s ignored", milestone, by)
            return None
        now = workflow.now()
        record = MilestoneRecord(at=at or now, by=by, note=note, recorded_at=now)
        self._milestones[milestone] = record
        self._publish()
        return record

    @workflow.signal
    def contract_signed(self, signal: MilestoneSignal) -> None:
        self._record(Milestone.CONTRACT_SIGNED, signal.by, signal.at, signal.note)

    @workflow.signal
    def kickoff_held(self, signal: MilestoneSignal) -> None:
        self._record(Milestone.KICKOFF_HELD, signal.by, signal.at, signal.note)

    @workflow.signal
    def integration_done(self, signal: MilestoneSignal) -> None:
        self._record(Milestone.INTEGRATION_DONE, signal.by, signal.at, signal.note)

    @workflow.signal
    def review_passed(self, signal: MilestoneSignal) -> None:
        self._record(Milestone.REVIEW_PASSED, signal.by, signal.at, signal.note)

    @workflow.update
    def complete_milestone(self, update: CompleteMilestone) -> MilestoneResult:
        record = self._record(update.milestone, update.by, update.at, update.note)
        assert record is not None  # the validator rejected duplicates
        return MilestoneResult(
            milestone=update.milestone, recorded_at=record.recorded_at, stage=self._stage
        )

    @complete_milestone.validator
    def _validate_milestone(self, update: CompleteMilestone) -> None:
        account, stage = self._request.account_id, self._stage
        if stage is Stage.COMPLETED:
            raise ValueError(f"the onboarding of {account} is already completed")
        if (done := self._milestones.get(update.milestone)) is not None:
            raise ValueError(
                f"{update.milestone} was already recorded for {account} "
                f"at {done.at:%Y-%m-%d %H:%M} UTC by {done.by}"
            )
        missing = [m for m in update.milestone.prerequisites if m not in self._milestones]
        if missing:
            raise ValueError(
                f"{account} is in stage {stage}; {update.milestone} needs "
                f"{', '.join(missing)} first"
            )
        if update.at is not None and update.at > workflow.now() + timedelta(minutes=5):
            raise ValueError(f"at {update.at.isoformat()} is in the future")

    # --- status --------------------------------------------------------------------------

    def _next_deadline(self) -> datetime | None:
        if self._stage is Stage.COMPLETED:
            return None
        return self._history[-1].entered_at + self._playbook.stage(self._stage).deadline

    def _applied(self, milestone: Milestone) -> bool:
        """Recorded, and its stage is behind us."""
        return milestone in self._milestones and milestone.stage.position < self._stage.position

    @workflow.query
    def status(self) -> OnboardingStatus:
        return OnboardingStatus(
            account_id=self._request.account_id,
            account_name=self._request.account_name,
            plan=self._request.plan,
            touch_model=self._request.touch_model,
            playbook=self._playbook.name,
            stage=self._stage,
            stage_entered_at=self._history[-1].entered_at,
            next_deadline=self._next_deadline(),
            csm_id=self._csm.id if self._csm else None,
            milestones=self._milestones,
            pending_milestones=[
                m for m in self._milestones if m.stage.position > self._stage.position
            ],
            first_value_at=(
                self._milestones[Milestone.INTEGRATION_DONE].at
                if self._applied(Milestone.INTEGRATION_DONE)
                else None
            ),
            everboarding_workflow_id=self._everboarding_id,
            history=self._history,
        )
