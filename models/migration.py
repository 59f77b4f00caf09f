"""Moving a running onboarding to a new version of its playbook: what the CLI sends (the
`playbook_preview` query and the `adopt_playbook` update) and what the run answers, the list
of changes it would make or made. Both cross the Temporal boundary: fields are added with
defaults, never renamed or removed."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from models.journey import Stage, Who
from models.playbook import PlaybookFile


class ChangeKind(StrEnum):
    ADDED = "added"
    """A task added to the checklist (with its due date and reminders)."""
    REMOVED = "removed"
    """An open task taken off the checklist: its reminders stop."""
    MOVED = "moved"
    """A due date or deadline moved (`shift`), or clamped to a day from now."""
    REMINDER = "reminder"
    """An open step's next reminder comes at another time."""
    CHANGED = "changed"
    """A setting, or a task's title, owner or required flag; applies from now on."""
    KEPT = "kept"
    """A task the new playbook drops that is already done: it stays done."""
    REFUSED = "refused"
    """Part of the new playbook that is not applied to this run (the note says why)."""


class Change(BaseModel):
    kind: ChangeKind
    subject: str
    """What changes: `task connect-sso`, `stage adopt deadline`, `risk.quiet_high`."""
    before: str | None = None
    after: str | None = None
    before_at: datetime | None = None
    after_at: datetime | None = None
    shift: timedelta | None = None
    note: str | None = None


class PlaybookOffer(BaseModel):
    """Input of the `playbook_preview` query and, with who acts, of `adopt_playbook`: the
    playbook file as validated by the CLI; the run resolves it for its own touch model and
    language, as the starter does."""

    name: str
    file: PlaybookFile
    as_of: datetime = Field(
        description='The moment the rules are applied at ("a day from now"), the same for the '
        "preview and the apply: a query's clock is the run's last task's, which may be days old."
    )


class AdoptPlaybook(PlaybookOffer):
    by: Who
    expect: str | None = Field(
        default=None,
        description="The digest of the preview the caller showed: refused if the run would "
        "now do something else (it changed since).",
    )


class PlaybookAdoption(BaseModel):
    """A migration a run went through (kept in its state, shown by `status`)."""

    number: int
    from_version: str | None
    to_version: str | None
    by: str
    at: datetime
    changes: int
    refused: int


class MigrationPlan(BaseModel):
    """One run's changes, previewed or made."""

    account_id: str
    playbook: str
    stage: Stage
    from_version: str | None
    to_version: str | None
    number: int = Field(default=1, description="This run's migrations, this one included.")
    ended: bool = Field(default=False, description="Ending or ended: nothing to migrate.")
    changes: list[Change] = []
    applied: bool = False

    @property
    def up_to_date(self) -> bool:
        return self.from_version == self.to_version and not self.changes

    @property
    def refused(self) -> list[Change]:
        return [c for c in self.changes if c.kind is ChangeKind.REFUSED]

    @property
    def digest(self) -> str:
        """What this plan does, as a short hash: the preview's and the apply's agree."""
        changes = "".join(c.model_dump_json() for c in self.changes)
        text = f"{self.number}:{self.from_version}>{self.to_version}:{changes}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]
