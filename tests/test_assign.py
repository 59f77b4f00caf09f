"""CSM assignment and the roster, against real databases (SQLite file, and PostgreSQL when
TEST_DATABASE_URL is set): capacity, industry, the pooled queue, reassignment, and many
assignments at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.assign import AssignActivities
from infra.roster import RosterEntry, RosterError, add_csm, remove_csm, seed_roster, update_csm
from models.activities import CsmRequest, ReassignRequest
from models.journey import QUEUE_ID, Contact, TouchModel
from models.tables import Csm, Onboarding, Reassignment
from tests.conftest import T0, open_account

QUEUE = Contact(name="CS lead", email="cs-queue@example.com")
run = ActivityEnvironment().run


def roster(sessions, *entries: RosterEntry) -> None:
    with sessions() as session:
        seed_roster(session, list(entries))


def csm(id_: str, *touch_models: str, capacity: int = 25, industries=()) -> RosterEntry:
    return RosterEntry(
        id=id_,
        name=f"CSM {id_}",
        email=f"{id_}@example.com",
        touch_models=list(touch_models),
        capacity=capacity,
        industries=list(industries),
    )


def assign(sessions, account: str, touch_model: str = "high", industry: str = "") -> str:
    return run(
        AssignActivities(sessions, QUEUE).assign_csm,
        CsmRequest(account_id=account, touch_model=touch_model, industry=industry),
    ).id


def test_lowest_relative_load_wins_ties_by_id_and_a_retry_keeps_the_pick(sessions) -> None:
    # csm-a takes 2, csm-b takes 4: relative load decides, not the raw count.
    roster(sessions, csm("csm-b", "high", capacity=4), csm("csm-a", "high", capacity=2))
    picks = []
    for n in range(6):
        open_account(sessions, f"acct-{n}")
        picks.append(assign(sessions, f"acct-{n}"))
    assert picks == ["csm-a", "csm-b", "csm-b", "csm-a", "csm-b", "csm-b"]
    assert assign(sessions, "acct-1") == "csm-b"  # a retried assignment changes nothing


def test_industry_match_is_preferred_while_it_has_room(sessions) -> None:
    roster(
        sessions,
        csm("csm-a", "high"),
        csm("csm-z", "high", capacity=1, industries=["Logistics"]),
    )
    open_account(sessions, "one")
    open_account(sessions, "two")
    assert assign(sessions, "one", industry="logistics") == "csm-z"
    assert assign(sessions, "two", industry="logistics") == "csm-a"  # csm-z is full


def test_nobody_with_capacity_means_the_pooled_queue_not_an_overload(sessions) -> None:
    roster(sessions, csm("csm-a", "high", capacity=1), csm("csm-t", "tech"))
    for account in ("one", "two", "commune"):
        open_account(sessions, account)
    assert assign(sessions, "one") == "csm-a"
    pooled = run(
        AssignActivities(sessions, QUEUE).assign_csm,
        CsmRequest(account_id="two", touch_model="high"),
    )
    assert (pooled.id, pooled.pooled, pooled.email) == (QUEUE_ID, True, QUEUE.email)
    assert pooled.reason == "every CSM serving high-touch is at capacity"
    nobody = run(
        AssignActivities(sessions, QUEUE).assign_csm,
        CsmRequest(account_id="commune", touch_model="community"),
    )
    assert nobody.reason == "no active CSM serves community-touch"
    with sessions() as session:
        row = session.get(Onboarding, "two")
        assert row.csm_id is None and row.queued_since is not None

    # A completed onboarding frees the seat: the queued one gets it on the next try.
    with sessions() as session:
        one = session.get(Onboarding, "one")
        one.completed_at = one.closed_at = T0 + timedelta(days=90)
        session.add(one)
        session.commit()
    assert assign(sessions, "two") == "csm-a"
    with sessions() as session:
        assert session.get(Onboarding, "two").queued_since is None


def test_concurrent_assignments_never_exceed_capacity(sessions) -> None:
    """A quarter-end batch: many assignments at once, on as many threads."""
    roster(sessions, csm("csm-a", "high", capacity=3), csm("csm-b", "high", capacity=4))
    accounts = [f"batch-{n}" for n in range(16)]
    for account in accounts:
        open_account(sessions, account)
    with ThreadPoolExecutor(max_workers=16) as pool:
        picks = list(pool.map(lambda account: assign(sessions, account), accounts))
    assert picks.count("csm-a") == 3
    assert picks.count("csm-b") == 4
    assert picks.count(QUEUE_ID) == 9
    with sessions() as session:
        rows = session.exec(select(Onboarding)).all()
        assert sum(1 for r in rows if r.csm_id == "csm-a") == 3
        assert sum(1 for r in rows if r.csm_id == "csm-b") == 4


def reassign(sessions, to: str, number: int = 1, **changes) -> str:
    request = ReassignRequest(
        account_id="acme",
        number=number,
        to=to,
        touch_model="high",
        reason="csm-a is on leave",
        by="lead",
        at=T0,
    ).model_copy(update=changes)
    return run(AssignActivities(sessions, QUEUE).reassign_csm, request).id


def test_reassignment_moves_the_account_once_and_refuses_with_the_reason(sessions) -> None:
    roster(
        sessions,
        csm("csm-a", "high"),
        csm("csm-b", "high", capacity=1),
        csm("csm-t", "tech"),
    )
    with sessions() as session:
        session.add(Csm(id="csm-x", name="x", email="x@example.com", touch_models=["high"]))
        session.get(Csm, "csm-x").active = False
        session.commit()
    open_account(sessions, "acme")
    open_account(sessions, "other")
    assert assign(sessions, "acme") == "csm-a"
    with sessions() as session:
        session.get(Onboarding, "other").csm_id = "csm-a"
        session.commit()

    refusals = {
        "csm-nobody": "unknown CSM 'csm-nobody' (active: csm-a, csm-b, csm-t)",
        "csm-x": "csm-x is not active",
        "csm-t": "csm-t does not serve high-touch (serves tech)",
        "csm-a": "acme is already with csm-a",
    }
    for target, message in refusals.items():
        with pytest.raises(ApplicationError) as error:
            reassign(sessions, target)
        assert error.value.message == message and error.value.non_retryable

    assert reassign(sessions, "csm-b") == "csm-b"
    assert reassign(sessions, "csm-b") == "csm-b"  # the retry of the same reassignment
    with sessions() as session:
        assert session.get(Onboarding, "acme").csm_id == "csm-b"
        moves = session.exec(select(Reassignment)).all()
        assert [(m.from_csm, m.to_csm, m.reason) for m in moves] == [
            ("csm-a", "csm-b", "csm-a is on leave")
        ]

    # csm-b is now full: moving another account there needs an explicit yes.
    with pytest.raises(ApplicationError, match=r"csm-b is at capacity \(1 of 1"):
        run(
            AssignActivities(sessions, QUEUE).reassign_csm,
            ReassignRequest(
                account_id="other",
                number=1,
                to="csm-b",
                touch_model="high",
                reason="r",
                by="lead",
                at=T0,
            ),
        )
    with sessions() as session:
        assert session.get(Onboarding, "other").csm_id == "csm-a"


def test_roster_seed_keeps_rows_edited_in_the_database(sessions) -> None:
    roster(sessions, csm("csm-a", "high"))
    with sessions() as session:
        update_csm(session, csm_id="csm-a", changes={"capacity": 3, "active": False})
    roster(sessions, csm("csm-a", "high"), csm("csm-b", "low"))
    with sessions() as session:
        row = session.get(Csm, "csm-a")
        assert (row.capacity, row.active) == (3, False)
        assert session.get(Csm, "csm-b") is not None


def test_roster_changes_are_validated_and_removal_protects_active_onboardings(sessions) -> None:
    with sessions() as session:
        add_csm(session, entry=csm("csm-a", "high"))
        with pytest.raises(RosterError, match="already on the roster"):
            add_csm(session, entry=csm("csm-a", "high"))
        with pytest.raises(RosterError, match="capacity: Input should be greater than or equal"):
            update_csm(session, csm_id="csm-a", changes={"capacity": -1})
        with pytest.raises(RosterError, match=r"no CSM 'csm-q' on the roster \(known: csm-a\)"):
            update_csm(session, csm_id="csm-q", changes={"capacity": 1})
        assert session.get(Csm, "csm-a").capacity == 25
    open_account(sessions, "acme", TouchModel.HIGH)
    assert assign(sessions, "acme") == "csm-a"
    with sessions() as session, pytest.raises(RosterError, match="1 active onboarding.*acme"):
        remove_csm(session, csm_id="csm-a")
    with sessions() as session:
        row = session.get(Onboarding, "acme")
        row.completed_at = row.closed_at = T0
        session.add(row)
        session.commit()
        assert remove_csm(session, csm_id="csm-a").startswith("removed csm-a")
        assert session.get(Csm, "csm-a").active is False
    # Removed stays removed: the seed file does not bring them back.
    roster(sessions, csm("csm-a", "high"))
    with sessions() as session:
        assert session.get(Csm, "csm-a").active is False
