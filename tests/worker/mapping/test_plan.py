"""plan_event: the default mapping tables, overrides, and bad values that never sink an event."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.strategies import json_values
from worker.mapping.model import ContactFields, CustomAttribute, CustomerFields, Dropped
from worker.mapping.plan import plan_event
from worker.mapping.policy import MappingPolicy, parse_overrides
from worker.mapping.routing import route_event

POLICY = MappingPolicy()


def attr(key: str, kind: str, value: Any) -> CustomAttribute:
    return CustomAttribute(key, kind, value)  # type: ignore[arg-type]


def test_group_maps_standard_fields_and_the_rest_to_custom_attributes() -> None:
    event = {
        "type": "group",
        "groupId": "g1",
        "traits": {
            "id": "g1",
            "name": "Initech",
            "email": "billing@initech.com",
            "website": "https://initech.com",
            "industry": "Technology",
            "employees": 329,
            "total billed": 830.5,
            "createdAt": "2015-02-23T22:28:55.111Z",
            "address": {
                "street": "6th St",
                "city": "San Francisco",
                "state": "CA",
                "postalCode": 94103,
                "country": "USA",
            },
        },
    }
    plan = plan_event(event, "g1", POLICY)
    assert plan.contact is None
    assert plan.dropped == ()
    assert plan.customer == CustomerFields(
        "g1",
        {
            "name": "Initech",
            "company": "Initech",
            "email": "billing@initech.com",
            "website_url": "https://initech.com",
            "city": "San Francisco",
            "state": "CA",
            "zip": "94103",
            "country": "US",
        },
        {
            "industry": attr("industry", "String", "Technology"),
            "employees": attr("employees", "Integer", 329),
            "total_billed": attr("total_billed", "Decimal", 830.5),
            "createdAt": attr("createdAt", "Timestamp", "2015-02-23T22:28:55.111Z"),
            "address_street": attr("address_street", "String", "6th St"),
        },
    )


def test_snake_case_address_keys_are_accepted() -> None:
    event = {"type": "group", "groupId": "g", "traits": {"address": {"postal_code": "10115"}}}
    plan = plan_event(event, "g", POLICY)
    assert plan.customer is not None
    assert plan.customer.standard == {"zip": "10115"}


def test_a_bad_country_is_dropped_and_the_rest_still_maps() -> None:
    event = {
        "type": "group",
        "groupId": "g",
        "traits": {"name": "X", "address": {"country": "Atlantis"}, "plan": "pro"},
    }
    plan = plan_event(event, "g", POLICY)
    assert plan.dropped == (Dropped("address.country", "not an ISO 3166 country name or code"),)
    assert plan.customer is not None
    assert plan.customer.standard == {"name": "X", "company": "X"}
    assert list(plan.customer.custom) == ["plan"]


def test_identify_maps_the_contact_and_splits_a_full_name() -> None:
    event = {
        "type": "identify",
        "userId": "u1",
        "traits": {
            "name": "Mary Ann Smith",
            "email": "mary@example.com",
            "title": "CTO",
            "phone": "+1 555",
            "linkedin": "https://linkedin.com/in/m",
            "twitter": "@m",
            "logins": 5,
            "plan": "premium",
        },
    }
    plan = plan_event(event, "g1", POLICY)  # linked to g1 by an earlier Group call
    assert plan.customer is None
    assert plan.contact == ContactFields(
        "u1",
        {
            "email": "mary@example.com",
            "first_name": "Mary Ann",
            "last_name": "Smith",
            "title": "CTO",
            "phone": "+1 555",
            "linked_in": "https://linkedin.com/in/m",
            "twitter": "@m",
        },
        {"logins": attr("logins", "Integer", 5), "plan": attr("plan", "String", "premium")},
    )


def test_explicit_first_and_last_names_win_over_splitting() -> None:
    event = {
        "type": "identify",
        "userId": "u",
        "traits": {"name": "Bob B", "firstName": "Robert", "last_name": "Brown", "first_name": "x"},
    }
    plan = plan_event(event, "g", POLICY)
    assert plan.contact is not None
    assert plan.contact.standard == {"first_name": "Robert", "last_name": "Brown"}
    assert plan.contact.custom == {}


def test_company_traits_of_an_identify_go_to_the_company_customer() -> None:
    event = {
        "type": "identify",
        "userId": "u1",
        "traits": {
            "email": "p@initech.com",
            "company": {"id": "c1", "name": "Initech", "plan": "enterprise", "employee_count": 329},
        },
    }
    route = route_event(event, POLICY, None)
    plan = plan_event(event, str(route.customer_external_id), POLICY)
    assert plan.customer == CustomerFields(
        "c1",
        {"name": "Initech", "company": "Initech"},
        {
            "plan": attr("plan", "String", "enterprise"),
            "employee_count": attr("employee_count", "Integer", 329),
        },
    )
    assert plan.contact == ContactFields("u1", {"email": "p@initech.com"}, {})


def test_identify_mode_makes_the_user_its_own_lead_customer() -> None:
    event = {
        "type": "identify",
        "userId": "u1",
        "traits": {
            "firstName": "Peter",
            "lastName": "Gibbons",
            "email": "peter@example.com",
            "company": "Initech",
            "address": {"city": "Austin", "country": "us"},
        },
    }
    plan = plan_event(event, "u1", POLICY)
    assert plan.customer == CustomerFields(
        "u1",
        {
            "name": "Peter Gibbons",
            "email": "peter@example.com",
            "city": "Austin",
            "country": "US",
            "company": "Initech",
        },
        {},
    )
    assert plan.contact is not None
    assert plan.contact.custom == {}  # address and company were used by the customer


def test_company_without_id_under_a_linked_customer_is_reported() -> None:
    event = {"type": "identify", "userId": "u1", "traits": {"company": {"name": "X"}, "a": 1}}
    plan = plan_event(event, "g7", POLICY)
    assert Dropped("company", "company traits without a company.id are not applied") in plan.dropped
    assert plan.contact is not None
    assert list(plan.contact.custom) == ["a"]


def test_overrides_rename_force_ignore_and_send_to_standard() -> None:
    policy = MappingPolicy(
        **parse_overrides(
            {
                "group": {
                    "rename": {"total billed": "billed_usd"},
                    "types": {"employees": "Integer"},
                    "ignore": ["avatar", "internal"],
                    "standard": {"domain": "website_url"},
                },
                "identify": {"standard": {"mobile": "phone", "company.hq": "city"}},
            }
        )
    )
    group = {
        "type": "group",
        "groupId": "g",
        "traits": {
            "total billed": 1,
            "employees": "329",
            "avatar": "http://x/a.png",
            "internal": {"score": 3},
            "domain": "initech.com",
            "website": "w.com",
        },
    }
    plan = plan_event(group, "g", policy)
    assert plan.customer is not None
    assert plan.customer.standard == {"website_url": "initech.com"}
    assert plan.customer.custom == {
        "billed_usd": attr("billed_usd", "Integer", 1),
        "employees": attr("employees", "Integer", 329),
    }
    identify = {
        "type": "identify",
        "userId": "u",
        "traits": {"mobile": "+49 1", "company": {"id": "c", "hq": "Berlin"}},
    }
    plan = plan_event(identify, "c", policy)
    assert plan.contact is not None
    assert plan.contact.standard == {"phone": "+49 1"}
    assert plan.customer == CustomerFields("c", {"city": "Berlin"}, {})


def test_wrongly_typed_standard_values_are_dropped_not_fatal() -> None:
    event = {
        "type": "identify",
        "userId": "u",
        "traits": {"email": "not-an-email", "title": {"a": 1}, "phone": 5551234, "twitter": True},
    }
    plan = plan_event(event, "g", POLICY)
    assert plan.contact is not None
    assert plan.contact.standard == {"phone": "5551234"}
    assert {d.field for d in plan.dropped} == {"email", "twitter"}
    assert list(plan.contact.custom) == ["title_a"]


def test_non_delivered_types_plan_nothing() -> None:
    assert plan_event({"type": "track"}, "x", POLICY).contact is None
    assert plan_event("junk", "x", POLICY).customer is None  # type: ignore[arg-type]


events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["identify", "group", "track"]),
        "userId": st.none() | st.text(max_size=5) | st.integers(),
        "groupId": st.none() | st.text(max_size=5),
        "anonymousId": st.none() | st.text(max_size=5),
        "traits": st.dictionaries(
            st.sampled_from(["name", "email", "company", "address", "firstName", "x y", "id"])
            | st.text(max_size=6),
            json_values,
            max_size=6,
        )
        | json_values,
        "integrations": st.none() | st.dictionaries(st.text(max_size=10), json_values, max_size=3),
    }
)


@settings(max_examples=300)
@given(
    events,
    st.sampled_from(
        [MappingPolicy(company_creation="identify"), MappingPolicy(company_creation="group")]
    ),
    st.none() | st.text(max_size=3),
)
def test_arbitrary_events_never_raise(
    event: dict[str, Any], policy: MappingPolicy, linked: str | None
) -> None:
    route = route_event(event, policy, linked)
    if route.outcome == "deliver":
        assert route.customer_external_id
        plan = plan_event(event, route.customer_external_id, policy)
        for fields in (plan.customer, plan.contact):
            if fields is not None:
                assert all(isinstance(v, str) and len(v) <= 255 for v in fields.standard.values())


def test_a_state_outside_the_us_is_not_sent_and_says_why() -> None:
    address = {"state": "NY", "country": "Germany", "city": "Berlin"}
    event = {"type": "group", "groupId": "g2", "traits": {"address": address}}
    plan = plan_event(event, "g2", POLICY)
    assert plan.customer is not None
    assert plan.customer.standard == {"city": "Berlin", "country": "DE"}
    assert [(d.field, d.reason) for d in plan.dropped] == [
        ("state", "ChartMogul keeps a state only for US addresses")
    ]


def test_a_null_trait_is_a_clear_only_when_the_policy_says_so() -> None:
    event = {"type": "group", "groupId": "g3", "traits": {"plan": None, "seats": 2}}
    cleared = plan_event(event, "g3", replace(POLICY, null_clears=True)).customer
    kept = plan_event(event, "g3", POLICY).customer
    assert cleared is not None and cleared.custom["plan"].value is None
    assert kept is not None and "plan" not in kept.custom
