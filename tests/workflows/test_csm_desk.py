"""Who looks after the account, without a server: assignment, the queue, reassignment."""

from __future__ import annotations

import pytest

from models.journey import QUEUE_ID, Contact, CsmRef, ReassignCsm
from models.onboarding import CsmState
from workflows.onboarding.csm import CsmDesk

MEI = CsmRef(id="csm-007", name="Mei Tanaka", email="mei.tanaka@example.com")
RAJ = CsmRef(id="csm-012", name="Raj Patel", email="raj.patel@example.com")
QUEUE = CsmRef(id=QUEUE_ID, name="CS queue", email="cs-queue@example.com", pooled=True)


def desk(current: CsmRef | None = None) -> CsmDesk:
    return CsmDesk(CsmState(current=current), "acme")


def to(csm: str) -> ReassignCsm:
    return ReassignCsm(to=csm, reason="holiday cover", by="lead")


def test_assigned_says_whether_the_csm_changed() -> None:
    csms = desk()
    assert csms.assigned(MEI)
    assert not csms.assigned(MEI.model_copy(update={"email": "mei@example.com"}))
    assert csms.assigned(RAJ)
    assert csms.current == RAJ


def test_the_queue_is_a_contact_but_not_a_csm_of_their_own() -> None:
    csms = desk()
    assert (csms.contact, csms.named, csms.pooled) == (None, None, False)
    assert csms.assigned(QUEUE)
    assert csms.pooled
    assert csms.contact == Contact(name="CS queue", email="cs-queue@example.com")
    assert csms.named is None
    assert csms.assigned(MEI)  # capacity freed up
    assert csms.named == Contact(name="Mei Tanaka", email="mei.tanaka@example.com")


def test_reassigning_before_there_is_a_csm_is_refused() -> None:
    with pytest.raises(ValueError, match="^acme has no CSM yet; one is assigned at handoff$"):
        desk().check_reassign(to("csm-012"), busy=False)


def test_reassigning_to_the_same_csm_is_refused() -> None:
    with pytest.raises(ValueError, match="^acme is already with csm-007$"):
        desk(MEI).check_reassign(to("csm-007"), busy=False)


def test_a_second_reassignment_while_one_is_under_way_is_refused() -> None:
    with pytest.raises(ValueError, match="another reassignment of this account is under way"):
        desk(MEI).check_reassign(to("csm-012"), busy=True)


def test_a_reassignment_is_numbered_and_says_who_had_the_account() -> None:
    csms = desk(MEI)
    csms.check_reassign(to("csm-012"), busy=False)
    assert csms.next_reassignment == 1
    assert csms.reassigned(csms.next_reassignment, RAJ) == MEI
    assert (csms.current, csms.next_reassignment) == (RAJ, 2)
