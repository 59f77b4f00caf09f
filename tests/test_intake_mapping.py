"""CRM webhook mappings (intake/*.toml): the shipped examples make deals the door admits,
other stages are ignored, a payload that cannot make a deal names its path, and a broken
mapping file is refused at load with the file and key named."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from api.mapping import (
    DealDocument,
    Ignored,
    Mapping,
    MappingError,
    PayloadError,
    load_mapping,
    load_mappings,
)
from models.door import admit
from models.journey import OnboardingRequest

ROOT = Path(__file__).resolve().parent.parent
INTAKE = ROOT / "intake"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # the examples closed on 2026-11-20


def example(name: str) -> Any:
    return json.loads((ROOT / "examples" / f"webhook-{name}.json").read_text())


def mapping(source: str) -> Mapping:
    loaded = load_mapping(INTAKE, source)
    assert loaded is not None
    return loaded


def deal(source: str, payload: Any) -> dict[str, Any]:
    result = mapping(source).apply(payload)
    assert isinstance(result, DealDocument), result
    return result.document


@pytest.mark.parametrize(
    ("source", "account_id", "plan", "touch_model", "value", "champion", "signed_at"),
    [
        (
            "hubspot",
            "hs-9483027716",
            "premium",
            "high",
            84000,
            "kenji.mori@acme-logistics.example",
            datetime(2026, 11, 20, 15, 42, 10, tzinfo=UTC),
        ),
        (
            "salesforce",
            "sf-001dn00000xyz12iab",
            "enterprise",
            "high",
            240000,
            "samir.n@initech.example",
            datetime(2026, 11, 20, 15, 42, 10, tzinfo=UTC),
        ),
    ],
)
def test_closed_won_example_makes_a_deal_the_door_admits(
    source: str,
    account_id: str,
    plan: str,
    touch_model: str,
    value: float,
    champion: str,
    signed_at: datetime,
) -> None:
    request = admit(OnboardingRequest, deal(source, example(f"{source}-closedwon")), now=NOW)
    assert request.account_id == account_id
    assert (request.plan, request.touch_model) == (plan, touch_model)
    assert request.contract_value == value
    assert request.champion.email == champion
    assert request.contract_signed_at == signed_at
    assert request.playbook == "standard"
    assert request.users == []


def test_hubspot_example_in_detail() -> None:
    document = deal("hubspot", example("hubspot-closedwon"))
    # The industry in the CS team's words (csms.toml, academy.toml); goals one per line,
    # the blank line dropped, the switching reason through its template.
    assert document["industry"] == "logistics"
    assert document["currency"] == "EUR"
    assert document["account_executive"] == {
        "id": "hs-owner-52100345",
        "name": "Sara Lindqvist",
        "email": "sara.lindqvist@example.com",
    }
    assert document["champion"]["name"] == "Kenji Mori"
    assert len(document["goals"]) == 4
    assert document["goals"][-1].startswith("Switching because: the previous tool had no API")


def test_salesforce_null_optional_fields_are_left_out() -> None:
    document = deal("salesforce", example("salesforce-closedwon"))
    # Switching_Reason__c is null: its goal is left out, not "Switching because: None".
    assert document["goals"] == [
        "Route every online order through one queue by the holiday season",
        "Challenge: 140 stores with their own order handling",
    ]
    payload = example("salesforce-closedwon")
    payload["champion"]["Title"] = None
    payload["opportunity"]["LastModifiedDate"] = None
    document = deal("salesforce", payload)
    assert "title" not in document["champion"]
    assert "contract_signed_at" not in document
    admit(OnboardingRequest, document, now=NOW)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("hubspot", "dealstage is 'appointmentscheduled', not closed won ('closedwon')"),
        (
            "salesforce",
            "opportunity.StageName is 'Negotiation/Review', not closed won ('Closed Won')",
        ),
    ],
)
def test_other_stage_example_is_ignored_naming_the_stage(source: str, reason: str) -> None:
    assert mapping(source).apply(example(f"{source}-other-stage")) == Ignored(reason)


def test_a_payload_without_the_stage_is_ignored() -> None:
    result = mapping("salesforce").apply({"account": {"Id": "001Dn00000XyZ12IAB"}})
    assert result == Ignored("opportunity.StageName is missing, not closed won ('Closed Won')")


def hubspot_won(**changes: Any) -> Any:
    payload = example("hubspot-closedwon")
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (hubspot_won(contact_email=""), "contact_email", "missing or empty; the deal's champion"),
        (
            {k: v for k, v in hubspot_won().items() if k != "amount"},
            "amount",
            "missing or empty; the deal's contract_value needs it",
        ),
        # A placeholder of a template: named, with the template.
        (
            hubspot_won(contact_lastname=""),
            "contact_lastname",
            "champion.name needs it (template '{contact_firstname} {contact_lastname}')",
        ),
        (hubspot_won(amount="84k"), "amount", "'84k' is not a number"),
        (hubspot_won(amount="NaN"), "amount", "is not a finite number"),
        (hubspot_won(closedate="20 Nov 2026"), "closedate", "not a time in epoch milliseconds"),
        (hubspot_won(use_case={"value": "x"}), "use_case", "is an object, not a single value"),
    ],
)
def test_closed_won_payload_that_cannot_make_a_deal_names_the_path(
    payload: Any, field: str, words: str
) -> None:
    with pytest.raises(PayloadError) as raised:
        mapping("hubspot").apply(payload)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert words in str(raised.value)
    assert "\n" not in str(raised.value)


def test_unmapped_picklist_value_names_the_value_and_those_mapped() -> None:
    with pytest.raises(PayloadError) as raised:
        mapping("hubspot").apply(hubspot_won(plan="Platinum"))
    assert raised.value.field == "plan"
    assert str(raised.value) == (
        "plan: 'Platinum' is not mapped for the deal's plan "
        "(mapped: 'Basic', 'Premium', 'Enterprise')"
    )


def test_an_unmapped_industry_passes_as_it_is() -> None:
    document = deal("hubspot", hubspot_won(company_industry="MARITIME"))
    assert document["industry"] == "MARITIME"
    assert deal("hubspot", hubspot_won(company_industry=""))["industry"] == "unknown"


def salesforce_won() -> Any:
    return copy.deepcopy(example("salesforce-closedwon"))


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            ("opportunity", ["a list"]),
            "opportunity.StageName",
            "opportunity is a list, not an object",
        ),
        (("account", "Acme"), "account.Id", "account is a string, not an object"),
        (("champion", None), "champion.Name", "missing or empty"),
    ],
)
def test_a_wrong_shape_names_the_path(change: tuple[str, Any], field: str, words: str) -> None:
    payload = salesforce_won()
    key, value = change
    payload[key] = value
    with pytest.raises(PayloadError) as raised:
        mapping("salesforce").apply(payload)
    assert raised.value.field == field
    assert words in str(raised.value)


def test_a_payload_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PayloadError, match="the payload is a list, not an object"):
        mapping("hubspot").apply([example("hubspot-closedwon")])


def test_origin_traces_a_deal_field_to_the_payload() -> None:
    hubspot, salesforce = mapping("hubspot"), mapping("salesforce")
    assert hubspot.origin(("champion", "email")) == "contact_email"
    assert salesforce.origin(("champion", "email")) == "champion.Email"
    assert hubspot.origin(("account_id",)) == "company_id"
    assert hubspot.origin(("champion", "name")) == "contact_firstname, contact_lastname"
    # A list item: which reading made it depends on the payload, so the list's paths.
    assert hubspot.origin(("goals", 2)) == "onboarding_goals, switching_reason"
    assert hubspot.origin(("playbook",)) is None  # not mapped: the deal's default


def test_origin_explains_the_doors_refusal() -> None:
    hubspot = mapping("hubspot")
    document = deal("hubspot", hubspot_won(contact_email="ops/team@acme.example"))
    with pytest.raises(ValidationError) as raised:
        admit(OnboardingRequest, document, now=NOW)
    (error,) = raised.value.errors()
    assert error["loc"] == ("champion", "email")
    assert hubspot.origin(error["loc"]) == "contact_email"


def test_shipped_mappings_all_load() -> None:
    assert sorted(load_mappings(INTAKE)) == ["hubspot", "salesforce"]


@pytest.mark.parametrize(
    "source", ["../etc", "..", "HubSpot", "hubspot.toml", "hub/spot", "", "-x", "a" * 64]
)
def test_a_source_that_is_not_a_slug_is_none(tmp_path: Path, source: str) -> None:
    # Even when such a file exists: nothing but a slug reaches the filesystem.
    (tmp_path / "HubSpot.toml").write_text((INTAKE / "hubspot.toml").read_text())
    assert load_mapping(tmp_path / "intake", source) is None
    assert load_mapping(tmp_path, source) is None


def test_a_missing_file_is_none(tmp_path: Path) -> None:
    assert load_mapping(tmp_path, "pipedrive") is None
    assert load_mapping(tmp_path / "no-such-directory", "hubspot") is None


# --- broken mapping files ------------------------------------------------------------------

MINIMAL = """
[closed_won]
stage = ["won"]

[deal]
account_id = { template = "x-{id}" }
account_name = { path = "name" }
industry = "software"
use_case = "tracking"
plan = "basic"
touch_model = "tech"
contract_value = { path = "amount", format = "number" }

[deal.account_executive]
id = "ae-001"
name = "Sara Lindqvist"
email = "sara@example.com"

[deal.champion]
name = { path = "champion.name" }
email = { path = "champion.email" }
"""


def write(tmp_path: Path, text: str, name: str = "crm") -> Path:
    (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


def test_a_minimal_mapping_works(tmp_path: Path) -> None:
    loaded = load_mapping(write(tmp_path, MINIMAL), "crm")
    assert loaded is not None and loaded.source == "crm"
    payload = {
        "stage": "won",
        "id": 7,
        "name": "Acme",
        "amount": 12.5,
        "champion": {"name": "Kenji Mori", "email": "kenji@acme.example"},
    }
    result = loaded.apply(payload)
    assert isinstance(result, DealDocument)
    assert result.document["account_id"] == "x-7"
    assert result.document["contract_value"] == 12.5
    admit(OnboardingRequest, result.document, now=NOW)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        # An unknown key in a reading, at the top, or a misspelt deal field.
        ('{ path = "name" }', '{ path = "name", fromat = "slug" }', "deal.account_name.fromat: "),
        ("[closed_won]", 'descripton = "x"\n[closed_won]', "descripton: Extra inputs"),
        ('use_case = "tracking"', 'usecase = "tracking"', "deal.usecase: not a field of the deal"),
        ('name = { path = "champion.name" }', "", "deal.champion: missing name"),
        # A format outside the fixed list, with the list.
        ('format = "number"', 'format = "currency"', "deal.contract_value.format: Input should"),
        # No [closed_won], or an empty one.
        ('[closed_won]\nstage = ["won"]', "", "closed_won: Field required"),
        ('stage = ["won"]', "", "closed_won: Dictionary should have at least 1 item"),
        # A table that neither reads a path nor fills a template.
        ('{ path = "name" }', '{ default = "x" }', "deal.account_name: give either path or"),
        # A literal or a mapped value the deal refuses: found now, not at the first webhook.
        ('plan = "basic"', 'plan = "platinum"', "deal.plan: Input should be 'basic'"),
        (
            'plan = "basic"',
            'plan = { path = "p", map = { "Gold" = "gold" } }',
            "deal.plan.map.Gold: Input should be",
        ),
        ('{ path = "name" }', '{ path = "a..b" }', "'a..b' is not a path"),
        ('{ template = "x-{id}" }', '{ template = "x-{id:>5}" }', "must be a path"),
        ('{ path = "name" }', '{ path = "name", format = "lines" }', '"lines" makes a list'),
        ('id = "ae-001"', "id = 2026-01-01", "deal.account_executive.id: a string, number"),
        ("[deal]", '[deal]\nusers = { path = "users" }', "deal.users: a list of people cannot"),
    ],
)
def test_a_broken_mapping_names_file_and_key(
    tmp_path: Path, old: str, new: str, words: str
) -> None:
    assert old in MINIMAL
    write(tmp_path, MINIMAL.replace(old, new, 1))
    for load in (lambda: load_mapping(tmp_path, "crm"), lambda: load_mappings(tmp_path)):
        with pytest.raises(MappingError) as raised:
            load()
        assert str(raised.value).startswith(f"{tmp_path / 'crm.toml'}: ")
        assert words in str(raised.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL.replace('industry = "software"', "industry = software"))
    with pytest.raises(MappingError, match=r"crm\.toml: not valid TOML: .*line 8"):
        load_mapping(tmp_path, "crm")


def test_an_object_of_the_deal_needs_a_table(tmp_path: Path) -> None:
    champion = MINIMAL[MINIMAL.index("[deal.champion]") :]
    text = MINIMAL.replace(champion, "").replace("[deal]\n", '[deal]\nchampion = "Kenji"\n')
    with pytest.raises(MappingError, match="deal.champion: a table of its fields"):
        load_mapping(write(tmp_path, text), "crm")


def test_load_mappings_refuses_a_file_name_no_url_can_reach(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL, name="Hub Spot")
    with pytest.raises(MappingError, match=r"Hub Spot\.toml: the file name is the source"):
        load_mappings(tmp_path)


def test_formats_and_list_indexes(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace('{ template = "x-{id}" }', '{ path = "company", format = "slug" }')
        .replace('{ path = "champion.name" }', '{ path = "contacts[1].name" }')
        .replace('{ path = "champion.email" }', '{ path = "contacts[1].email" }')
        .replace(
            "[deal.account_executive]",
            'contract_signed_at = { path = "closed", format = "date" }\n\n[deal.account_executive]',
        )
    )
    loaded = load_mapping(write(tmp_path, text), "crm")
    assert loaded is not None
    payload = {
        "stage": "won",
        "company": "Müller & Söhne GmbH",
        "name": "Müller & Söhne GmbH",
        "amount": "1200.50",
        "closed": "2026-11-20",
        "contacts": [{"name": "Ana"}, {"name": "Kenji Mori", "email": "kenji@acme.example"}],
    }
    result = loaded.apply(payload)
    assert isinstance(result, DealDocument)
    assert result.document["account_id"] == "muller-sohne-gmbh"
    assert result.document["contract_value"] == 1200.5
    assert result.document["contract_signed_at"] == "2026-11-20T00:00:00Z"
    assert result.document["champion"]["name"] == "Kenji Mori"
    assert loaded.origin(("champion", "email")) == "contacts[1].email"
    payload["contacts"] = payload["contacts"][:1]
    with pytest.raises(PayloadError, match=r"^contacts\[1\]\.name: missing or empty"):
        loaded.apply(payload)
    payload["contacts"] = {"name": "Kenji"}
    with pytest.raises(PayloadError, match=r"contacts is an object, not a list"):
        loaded.apply(payload)
    payload["contacts"] = [{"name": "Kenji Mori", "email": "kenji@acme.example"}] * 2
    for closed, words in [("20.11.2026", "not a date"), ("2026-02-30", "not a date")]:
        payload = {**payload, "closed": closed}
        with pytest.raises(PayloadError, match=words):
            loaded.apply(payload)
    with pytest.raises(PayloadError, match="no letters or digits"):
        loaded.apply({**payload, "company": "!!!"})
