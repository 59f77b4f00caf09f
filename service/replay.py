"""The replay gate's decisions, without a server: which runs to replay when there are too many
(`choose`), and what a set of replays says (`Verdict`, `divergence`). `starter.py
replay-check` (cli/replay.py) lists the runs, fetches their histories and replays them.

The sample has to be one an engineer deploying on a Friday can trust:

- **Every kind of run is in it.** Runs are grouped by workflow type, status and, for an
  onboarding, the stage its search attribute names (`OnboardingWorkflow running adopt`,
  `OnboardingWorkflow continued_as_new review`, `EverboardingWorkflow running`); a change
  usually breaks the runs that passed one particular point, and those sit together in one
  group. Running groups come first: those runs must carry on under the new code.
- **Both ends of each group.** First the oldest run of every group (started on the oldest code
  still in flight, with the longest history: the one a removed branch breaks), then the newest
  (the paths the latest release added).
- **The rest drawn at random**, with `seed`: the same runs and seed give the same sample, so a
  failed gate fails again when rerun, and a different seed looks elsewhere.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

RUNNING = "running"


@dataclass(frozen=True)
class Run:
    """One workflow run, as visibility lists it."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    """`running`, or how it closed: `completed`, `continued_as_new`, `terminated`, ..."""
    started_at: datetime
    stage: str | None = None
    """An onboarding's `OnboardingStage` search attribute (none on an everboarding)."""

    @property
    def group(self) -> tuple[bool, str, str, str]:
        """The kind of run a sample must show; sorts running ones first."""
        return (self.status != RUNNING, self.workflow_type, self.status, self.stage or "")

    @property
    def key(self) -> tuple[str, str]:
        return (self.workflow_id, self.run_id)


def choose(runs: list[Run], size: int, seed: int) -> list[Run]:
    """All the runs when there are at most `size`; else `size` of them, as the module says.
    The result depends only on the set of runs, `size` and `seed` (not on listing order)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    ordered = sorted(runs, key=lambda run: run.key)
    if len(ordered) <= size:
        return ordered
    groups: dict[tuple[bool, str, str, str], list[Run]] = {}
    for run in sorted(ordered, key=lambda run: (run.started_at, run.key)):
        groups.setdefault(run.group, []).append(run)
    picked: dict[tuple[str, str], Run] = {}
    for end in (0, -1):  # the oldest of each group, then the newest
        for group in sorted(groups):
            if len(picked) == size:
                break
            run = groups[group][end]
            picked.setdefault(run.key, run)
    rest = [run for run in ordered if run.key not in picked]
    for run in random.Random(seed).sample(rest, size - len(picked)):
        picked[run.key] = run
    return sorted(picked.values(), key=lambda run: run.key)


@dataclass(frozen=True)
class Broken:
    """A run the code on disk cannot replay, and why, in a line."""

    run: Run
    divergence: str
    nondeterministic: bool
    """The code issues other commands than the history holds (else: the code failed, e.g. a
    payload it cannot decrypt or an exception in workflow code)."""


@dataclass(frozen=True)
class Skipped:
    run: Run
    reason: str


@dataclass
class Verdict:
    """What the gate found: how many runs it saw, chose and replayed, which broke."""

    found: Counter[str]
    """Runs listed, by workflow type."""
    chosen: int
    seed: int
    replayed: Counter[str] = field(default_factory=Counter)
    """Runs replayed (broken or not), by workflow type."""
    broken: list[Broken] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def sampled(self) -> bool:
        return self.chosen < sum(self.found.values())

    @property
    def passed(self) -> bool:
        return not self.broken

    def record(self, run: Run, failure: Exception | None, *, nondeterministic: bool) -> None:
        self.replayed[run.workflow_type] += 1
        if failure is not None:
            self.broken.append(Broken(run, divergence(failure), nondeterministic))

    def as_json(self) -> dict[str, object]:
        """For CI: the same facts as the summary, ids whole."""
        return {
            "passed": self.passed,
            "found": dict(sorted(self.found.items())),
            "chosen": self.chosen,
            "sampled": self.sampled,
            "seed": self.seed,
            "replayed": dict(sorted(self.replayed.items())),
            "broken": [
                _run_json(b.run)
                | {"divergence": b.divergence, "nondeterministic": b.nondeterministic}
                for b in sorted(self.broken, key=lambda b: b.run.key)
            ],
            "skipped": [
                _run_json(s.run) | {"reason": s.reason}
                for s in sorted(self.skipped, key=lambda s: s.run.key)
            ],
        }


def _run_json(run: Run) -> dict[str, object]:
    return {
        "workflow_id": run.workflow_id,
        "run_id": run.run_id,
        "workflow_type": run.workflow_type,
        "status": run.status,
        "stage": run.stage,
    }


# The SDK core's failure, as the replayer hands it over: the message a person needs sits in
# a Rust struct's debug print, `Failure { failure: Some(Failure { message: "...", source: ...`.
_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')
_PREFIX = "Workflow activation completion failed: "
MAX_DIVERGENCE = 300  # characters: a line or two on a terminal


def divergence(failure: Exception) -> str:
    """The first divergent command, as the replay's error says it, in one line: e.g.
    `[TMPRL1100] Nondeterminism error: Timer machine does not handle this event:
    HistoryEvent(id: 5, ActivityTaskScheduled)` (the code now starts a timer where the
    history has the activity it scheduled as event 5)."""
    text = str(failure)
    found = _CORE_MESSAGE.search(text)
    if found:
        text = found[1].replace('\\"', '"')
    else:  # an exception workflow code (or the codec) raised: its type says half of it
        text = f"{type(failure).__name__}: {text.removeprefix(_PREFIX)}"
    line = " ".join(text.split())
    if len(line) > MAX_DIVERGENCE:
        line = line[: MAX_DIVERGENCE - 1].rstrip() + "…"
    return line
