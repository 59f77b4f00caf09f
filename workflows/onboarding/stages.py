"""The stages and their milestones: where the customer is, what has happened, what ends the
current stage, and how the journey ends (completed, cancelled, lapsed). Plain code: it takes
`now` and returns decisions."""

from __future__ import annotations

from datetime import datetime, timedelta

from models.activities import RowFacts
from models.journey import (
    Cancel,
    Cancellation,
    Milestone,
    MilestoneRecord,
    Stage,
    StageVisit,
)
from models.onboarding import JourneyState
from models.playbook import Playbook

# The milestone that ends each stage that waits for one.
STAGE_MILESTONE = {milestone.stage: milestone for milestone in Milestone}
# How far ahead of the worker's clock an outside timestamp may be (clocks drift).
SKEW = timedelta(minutes=5)


def bound(at: datetime | None, earliest: datetime, now: datetime) -> tuple[datetime, str | None]:
    """An outside timestamp made safe for a signal (which cannot be refused): missing → now;
    beyond `now` plus the skew → now; before `earliest` → `earliest`. The second value says
    what was changed, for the log."""
    if at is None:
        return now, None
    if at > now + SKEW:
        return now, f"{at.isoformat()} is in the future; taken as {now.isoformat()}"
    if at < earliest:
        return earliest, f"{at.isoformat()} is before {earliest.isoformat()}; taken as that"
    return min(at, now), None


def check_moment(at: datetime | None, earliest: datetime, now: datetime, what: str) -> None:
    """An update's outside timestamp: refused (ValueError) rather than changed."""
    if at is None:
        return
    if at > now + SKEW:
        raise ValueError(f"at {at.isoformat()} is in the future")
    if at < earliest:
        raise ValueError(f"at {at.isoformat()} is before {what} ({earliest.isoformat()})")


class Journey:
    def __init__(self, state: JourneyState, playbook: Playbook, account_id: str) -> None:
        self.state = state
        self.playbook = playbook
        self.account_id = account_id

    @property
    def stage(self) -> Stage:
        return self.state.stage

    @property
    def ended(self) -> bool:
        return self.state.stage.ended

    @property
    def ending(self) -> bool:
        """Ended, or a cancellation is waiting to be carried out."""
        return self.ended or self.state.cancellation is not None

    @property
    def cut_short(self) -> bool:
        """Ending other than by completion: cancelled (or being cancelled), or lapsed."""
        return self.state.cancellation is not None or self.state.stage is Stage.LAPSED

    @property
    def entered_at(self) -> datetime:
        return self.state.history[-1].entered_at

    def entered(self) -> None:
        """The current stage's entry actions are done (a new run does not repeat them)."""
        self.state.entered = True

    def everboarding_started(self, workflow_id: str) -> None:
        self.state.everboarding_id = workflow_id

    def sign_of_life(self, at: datetime) -> None:
        self.state.last_activity_at = max(self.state.last_activity_at, at)

    # --- milestones ---------------------------------------------------------------------

    def earliest(self, milestone: Milestone) -> datetime:
        """A milestone cannot have happened before the onboarding started, nor before the
        milestones it follows."""
        before = [
            self.state.milestones[m].at
            for m in milestone.prerequisites
            if m in self.state.milestones
        ]
        return max([self.state.started_at, *before])

    def record(
        self, milestone: Milestone, by: str, at: datetime, now: datetime, note: str | None = None
    ) -> MilestoneRecord | None:
        """Keep a milestone fact once (None for a duplicate); the stage loop applies it when
        its stage is reached."""
        if milestone in self.state.milestones:
            return None
        record = MilestoneRecord(at=at, by=by, note=note, recorded_at=now)
        self.state.milestones[milestone] = record
        self.sign_of_life(now)
        return record

    def check_milestone(self, milestone: Milestone, at: datetime | None, now: datetime) -> None:
        """Why a CSM's milestone is refused (ValueError), if it is."""
        self.check_running()
        account, stage = self.account_id, self.state.stage
        if (done := self.state.milestones.get(milestone)) is not None:
            raise ValueError(
                f"{milestone} was already recorded for {account} "
                f"at {done.at:%Y-%m-%d %H:%M} UTC by {done.by}"
            )
        missing = [m for m in milestone.prerequisites if m not in self.state.milestones]
        if missing:
            raise ValueError(
                f"{account} is in stage {stage}; {milestone} needs {', '.join(missing)} first"
            )
        check_moment(at, self.earliest(milestone), now, "what it follows")

    def applied(self, milestone: Milestone) -> bool:
        """Recorded, and the journey went on past its stage (not merely ended after it)."""
        reached = {visit.stage for visit in self.state.history}
        return milestone in self.state.milestones and milestone.stage.next in reached

    def pending_milestones(self) -> list[Milestone]:
        """Recorded early: applied when their stage is reached (never, if it ends first)."""
        here = self.state.stage
        return [
            m
            for m in self.state.milestones
            if not self.applied(m) and (here.ended or m.stage.position > here.position)
        ]

    def waits_for(self) -> Milestone | None:
        """The milestone the current stage waits for (None: it ends by itself)."""
        return STAGE_MILESTONE.get(self.state.stage)

    def settled(self) -> bool:
        """The current stage's milestone is there (or the stage needs none)."""
        milestone = self.waits_for()
        return milestone is None or milestone in self.state.milestones

    # --- moving on and ending -------------------------------------------------------------

    def advance(self, now: datetime) -> Stage:
        """Leave the stage for the next one; returns the one left."""
        return self._move(self.state.stage.next, now)

    def _move(self, stage: Stage, now: datetime) -> Stage:
        previous = self.state.stage
        self.state.history[-1].exited_at = now
        self.state.stage = stage
        self.state.history.append(StageVisit(stage=stage, entered_at=now))
        self.state.entered = False
        return previous

    def cancel(self, update: Cancel, now: datetime) -> Cancellation:
        """A cancellation to carry out at the next safe point (a CSM's, or from Temporal)."""
        self.state.cancellation = Cancellation(
            **update.model_dump(), at=now, stage=self.state.stage
        )
        return self.state.cancellation

    def let_go(self, now: datetime) -> Stage:
        return self._move(Stage.CANCELLED, now)

    def lapse(self, now: datetime) -> Stage:
        return self._move(Stage.LAPSED, now)

    def check_running(self) -> None:
        if self.ending:
            state = "has ended" if self.ended else "is being cancelled"
            raise ValueError(f"the onboarding of {self.account_id} {state} ({self.state.stage})")

    def check_cancel(self) -> None:
        self.check_running()
        if self.state.stage is Stage.EXPAND:
            raise ValueError("the onboarding is finishing; end the everboarding instead")

    def closes_at(self, overdue_from: datetime | None, paused: bool) -> datetime | None:
        """When the onboarding closes as lapsed: its stage overdue past every allowance
        (`overdue_from`: the deadline plus the playbook's max_extension) and the playbook's
        grace besides, counted from the last sign of life if that is later. Never while the
        clock is paused."""
        if paused or overdue_from is None or self.ending:
            return None
        grace = self.playbook.lapse_after
        return max(overdue_from + grace, self.state.last_activity_at + grace)

    # --- what the read model says ---------------------------------------------------------

    def applied_at(self, milestone: Milestone) -> datetime | None:
        """When an applied milestone happened, never before the milestones it follows (a
        system may report integration before the CRM reports the signature)."""
        if not self.applied(milestone):
            return None
        recorded = self.state.milestones
        return max(recorded[m].at for m in [*milestone.prerequisites, milestone] if m in recorded)

    def row(self, lapses_at: datetime | None) -> RowFacts:
        at = self.applied_at

        stage, now = self.state.stage, self.entered_at
        return RowFacts(
            stage=stage,
            contract_signed_at=at(Milestone.CONTRACT_SIGNED),
            kickoff_at=at(Milestone.KICKOFF_HELD),
            first_value_at=at(Milestone.INTEGRATION_DONE),
            lapses_at=None if stage.ended else lapses_at,
            completed_at=now if stage is Stage.COMPLETED else None,
            cancellation=self.state.cancellation if stage is Stage.CANCELLED else None,
            lapsed_at=now if stage is Stage.LAPSED else None,
            closed_at=now if stage.ended else None,
        )
