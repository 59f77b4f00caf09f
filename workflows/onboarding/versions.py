"""The run's playbook versions: what a new version would change (the preview, on a copy of
the state), whether the run takes it now, and taking it, with a note of who and when. The
rules themselves are migration.py's."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from models.migration import AdoptPlaybook, MigrationPlan, PlaybookAdoption, PlaybookOffer
from models.onboarding import OnboardingInput
from workflows.onboarding import migration
from workflows.onboarding.stages import SKEW

if TYPE_CHECKING:
    from workflows.onboarding.core import Onboarding

PREVIEW_VALID = timedelta(minutes=10)
"""How old a moment an apply may carry (`AdoptPlaybook.as_of`): the CLI previews each run just
before it applies."""


def preview(o: Onboarding, offer: PlaybookOffer) -> MigrationPlan:
    """What adopting `offer` would change at `offer.as_of`, worked out on a copy of the
    state; nothing for a run of another playbook (the answer names its own) or one that is
    ending."""
    if offer.name != o.playbook.name or o.journey.ending:
        plan = _plan(o, o.playbook.name, None)
        plan.ended = o.journey.ending
        return plan
    copy = type(o)(
        OnboardingInput(request=o.request, playbook=o.playbook, path=o.path),
        o.state.model_copy(deep=True),
        o.key_prefix,
        o.chain,
    )
    return _adopt(copy, offer)


def check(o: Onboarding, update: AdoptPlaybook, now: datetime) -> None:
    """Refuse (ValueError) what `adopt` must not do; its dry run is here too, so nothing it
    would trip on can fail the workflow task."""
    o.journey.check_running()
    if update.name != o.playbook.name:
        raise ValueError(
            f"{o.request.account_id} runs playbook {o.playbook.name!r}, not {update.name!r}"
        )
    if not now - PREVIEW_VALID <= update.as_of <= now + SKEW:
        raise ValueError(
            f"the preview is of {update.as_of:%Y-%m-%d %H:%M} UTC and the run's clock says "
            f"{now:%Y-%m-%d %H:%M} UTC: preview it again (and check this machine's clock)"
        )
    dry_run = preview(o, update)
    if update.expect is not None and dry_run.digest != update.expect:
        raise ValueError(f"{o.request.account_id} changed since the preview: preview it again")


def adopt(o: Onboarding, update: AdoptPlaybook, now: datetime) -> MigrationPlan:
    """Adopt the offered version (migration.py says the rules), and keep a note of it."""
    plan = _adopt(o, update)
    o.state.playbook.adoptions.append(
        PlaybookAdoption(
            number=plan.number,
            from_version=plan.from_version,
            to_version=plan.to_version,
            by=update.by,
            at=now,
            changes=len(plan.changes),
            refused=len(plan.refused),
        )
    )
    return plan


def _adopt(o: Onboarding, offer: PlaybookOffer) -> MigrationPlan:
    new = offer.file.resolve(offer.name, o.playbook.touch_model, o.request.locale)
    plan = _plan(o, offer.name, new.version)
    if new.version != o.playbook.version:
        plan.changes = migration.adopt(o, new, offer.as_of)
        if (opened := o.state.learning.academy_opened_at) is not None:
            # Access was given at kickoff: a step for it the new version adds is done.
            o.checklist.finish("academy-access", "academy", opened)
    return plan


def _plan(o: Onboarding, playbook: str, to_version: str | None) -> MigrationPlan:
    return MigrationPlan(
        account_id=o.request.account_id,
        playbook=playbook,
        stage=o.journey.stage,
        from_version=o.playbook.version,
        to_version=to_version,
        number=len(o.state.playbook.adoptions) + 1,
    )
