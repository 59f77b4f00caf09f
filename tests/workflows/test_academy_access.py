"""Academy access, course progress and the Review gate, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.journey import Cancel, CancelReason, Contact
from models.onboarding import LearningState
from models.playbook import LearningPolicy, Playbook
from tests.conftest import deal, onboarding_input
from workflows.onboarding.core import Onboarding, new_state
from workflows.onboarding.learning import Learning

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
INPUT = onboarding_input(deal("acme"))  # premium logistics: getting-started, ... on the path
ANA = Contact(name="Ana Ruiz", email="ana@acme-logistics.example")
BO = Contact(name="Bo Chen", email="bo@acme-logistics.example")
CY = Contact(name="Cy Park", email="cy@acme-logistics.example")


def learning(playbook: Playbook = INPUT.playbook) -> Learning:
    return Learning(LearningState(), INPUT.path, playbook)


def gated(*course_ids: str) -> Playbook:
    return INPUT.playbook.model_copy(
        update={"learning": LearningPolicy(review_gate=list(course_ids))}
    )


def names(users: list[Contact]) -> list[str]:
    return [user.name for user in users]


# --- users and access -------------------------------------------------------------------------


def test_a_user_is_added_once_whatever_the_case_of_their_email() -> None:
    academy = learning()
    assert names(academy.add_users([ANA, BO])) == ["Ana Ruiz", "Bo Chen"]
    shouting = Contact(name="Ana R.", email="ANA@acme-logistics.example")
    assert names(academy.add_users([shouting, CY, CY])) == ["Cy Park"]
    assert names(academy.state.users_waiting) == ["Ana Ruiz", "Bo Chen", "Cy Park"]


def test_users_wait_until_the_academy_opens_then_are_taken_once() -> None:
    academy = learning()
    academy.add_users([ANA, BO])
    assert academy.take_waiting() == []
    assert not academy.open

    academy.open_academy(T0)
    assert names(academy.take_waiting()) == ["Ana Ruiz", "Bo Chen"]
    assert academy.take_waiting() == []
    assert academy.state.academy_users == [
        "ana@acme-logistics.example",
        "bo@acme-logistics.example",
    ]


def test_a_user_granted_before_is_not_added_again() -> None:
    academy = learning()
    academy.open_academy(T0)
    academy.add_users([ANA])
    academy.take_waiting()
    again = Contact(name="Ana", email="Ana@Acme-Logistics.example")
    assert academy.add_users([again, BO]) == [BO]


def test_users_added_after_the_end_are_refused_and_counted() -> None:
    o = Onboarding(INPUT, new_state(INPUT.request, T0), "onboarding-acme.0000aaaa")
    o.journey.cancel(Cancel(reason=CancelReason.PRICE, by="csm-007"), T0 + DAY)
    assert o.users_added([ANA, BO]) == []
    assert o.state.learning.refused_users == 2
    assert names(o.state.learning.users_waiting) == ["Kenji Mori"]  # the champion, from the deal


# --- progress ---------------------------------------------------------------------------------


def test_progress_on_a_course_or_module_of_the_path_is_kept_with_its_first_time() -> None:
    academy = learning()
    assert academy.progress("getting-started/tour", T0 + DAY)
    assert academy.progress("getting-started/tour", T0 + 2 * DAY)
    assert academy.progress("sso-and-audit", T0 + 3 * DAY)
    assert academy.state.courses_done == {
        "getting-started/tour": T0 + DAY,
        "sso-and-audit": T0 + 3 * DAY,
    }


def test_progress_on_ids_not_on_the_path_is_refused() -> None:
    academy = learning()
    assert not academy.progress("getting-started/no-such-module", T0)
    assert not academy.progress("governance", T0)  # enterprise only: not on a premium path
    assert not academy.progress("no-such-course", T0)
    assert academy.state.courses_done == {}


# --- the Review gate --------------------------------------------------------------------------


def test_without_a_gate_nothing_waits() -> None:
    assert learning().waiting_for_courses(T0) == []


def test_the_review_gate_lists_the_gate_courses_not_finished_yet() -> None:
    academy = learning(gated("getting-started", "integrations-basics", "governance"))
    academy.open_academy(T0)
    # governance is not on this customer's path: it cannot hold them up.
    assert academy.waiting_for_courses(T0) == ["getting-started", "integrations-basics"]

    academy.progress("getting-started", T0 + DAY)
    academy.progress("integrations-basics/api-keys", T0 + DAY)
    assert academy.waiting_for_courses(T0 + DAY) == ["integrations-basics"]

    academy.progress("integrations-basics/first-sync", T0 + 2 * DAY)
    assert academy.waiting_for_courses(T0 + 2 * DAY) == []


def test_the_summary_counts_courses_users_and_what_review_waits_for() -> None:
    academy = learning(gated("getting-started"))
    academy.open_academy(T0)
    academy.add_users([ANA])
    academy.take_waiting()
    academy.progress("sso-and-audit", T0)
    assert academy.summary(T0) == "1/8 courses done, 1 user; Review waits for getting-started"
