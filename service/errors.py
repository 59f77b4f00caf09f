"""The refusals of the service layer. Each says in one line what is wrong, in the words the
CLI prints after `error:` and the API returns as `detail`; the class says which HTTP status
(`status`) it is."""

from __future__ import annotations

from models.wording import human_durations


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """No such onboarding (or everboarding)."""

    status = 404


class Conflict(ServiceError):
    """The onboarding is not in a state to take this: it ended, it exists with another deal."""

    status = 409


class Rejected(Conflict):
    """The workflow's validator refused a person's action; `reason` is its own words."""

    def __init__(self, reason: str) -> None:
        self.reason = human_durations(reason)
        super().__init__(f"rejected: {self.reason}")


class Unavailable(ServiceError):
    """Temporal or the worker did not answer; trying again later may work."""

    status = 503


class NoWorker(Unavailable):
    """A query nobody answered: the server is up, no worker polls."""


class Invalid(ServiceError):
    """The request names something that does not exist or cannot be used (a playbook)."""

    status = 422
