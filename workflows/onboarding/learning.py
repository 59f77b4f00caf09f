"""The learning path and academy access: who is waiting for access, course progress, and the
courses the playbook wants finished before Review. Plain code: it takes `now`."""

from __future__ import annotations

from datetime import datetime

from models.academy import CourseStatus, LearningPath
from models.journey import Contact
from models.onboarding import LearningState
from models.playbook import Playbook


class Learning:
    def __init__(self, state: LearningState, path: LearningPath, playbook: Playbook) -> None:
        self.state = state
        self.path = path
        self.playbook = playbook

    @property
    def open(self) -> bool:
        """The academy is open to this account (from kickoff on)."""
        return self.state.academy_opened_at is not None

    def open_academy(self, now: datetime) -> None:
        self.state.academy_opened_at = now

    def add_users(self, users: list[Contact]) -> list[Contact]:
        """Queue new users for access (now if the academy is open, else at kickoff); the
        ones already granted or waiting are left out. Returns the new ones."""
        known = {*self.state.academy_users, *(_email(u) for u in self.state.users_waiting)}
        added = []
        for user in users:
            if _email(user) not in known:
                known.add(_email(user))
                added.append(user)
        self.state.users_waiting += added
        return added

    def refuse_users(self, users: list[Contact]) -> None:
        """Users who arrived after the onboarding ended: counted, never granted."""
        self.state.refused_users += len(users)

    def take_waiting(self) -> list[Contact]:
        """The users to grant access now (none before the academy opens)."""
        if not self.open:
            return []
        users, self.state.users_waiting = self.state.users_waiting, []
        self.state.academy_users += [_email(user) for user in users]
        return users

    def revoke(self, user: Contact) -> None:
        """A grant that was decided but never carried out (the onboarding was cut short)."""
        self.state.academy_users.remove(_email(user))

    def progress(self, progress_id: str, at: datetime) -> bool:
        """Course progress (`course` or `course/module`); False when it names nothing on the
        path (ignored)."""
        if self.path.unknown(progress_id):
            return False
        self.state.courses_done.setdefault(progress_id, at)
        return True

    def courses(self, now: datetime) -> list[CourseStatus]:
        return self.path.progress(self.state.academy_opened_at, self.state.courses_done, now)

    def waiting_for_courses(self, now: datetime) -> list[str]:
        """Courses the playbook wants finished before Review that are not finished yet."""
        gate = self.playbook.learning.review_gate
        if not gate:
            return []  # the common case, checked on every wake of the wait loop
        return [c.id for c in self.courses(now) if c.id in gate and c.done_at is None]

    def summary(self, now: datetime) -> str:
        courses = self.courses(now)
        done = sum(1 for course in courses if course.done_at is not None)
        waiting = self.waiting_for_courses(now)
        users = len(self.state.academy_users)
        return f"{done}/{len(courses)} courses done, {users} user{'' if users == 1 else 's'}" + (
            f"; Review waits for {', '.join(waiting)}" if waiting else ""
        )


def _email(user: Contact) -> str:
    return str(user.email).lower()
