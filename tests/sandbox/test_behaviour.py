"""What ChartMogul keeps or drops (state, contact custom fields, new keys on PATCH), the answer
of attribute DELETE, attribute sources, and the /_sandbox/behaviour settings that choose them."""

from __future__ import annotations

from typing import Any

import chartmogul
import httpx
import pytest

from sandbox.behaviour import Behaviour
from sandbox.config import SandboxConfig
from sandbox.runner import SandboxServer
from tests.sandbox.helpers import create_customer as _customer

DELETED = "Custom attributes deleted from customer"


def _state(control: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = control.get("/state").json()
    return body


def _behave(control: httpx.Client, **settings: object) -> None:
    response = control.post("/behaviour", json=settings)
    assert response.status_code == 200, response.text


# The settings themselves ---------------------------------------------------------------------


def test_behaviour_starts_at_the_defaults_and_changes_at_run_time(control: httpx.Client) -> None:
    assert control.get("/behaviour").json() == {
        "lookup_matches_merged": True,
        "state_us_only": True,
        "contact_custom": "store",
        "patch_new_custom": "create",
        "custom_delete_answer": 202,
        "merge_delay": 0.0,
    }
    changed = control.post("/behaviour", json={"contact_custom": "drop", "merge_delay": 1})
    assert changed.json()["contact_custom"] == "drop" and changed.json()["merge_delay"] == 1.0
    assert _state(control)["behaviour"]["contact_custom"] == "drop"
    control.post("/reset")
    assert control.get("/behaviour").json()["contact_custom"] == "store"


@pytest.mark.parametrize(
    "bad",
    [
        {"no_such_setting": 1},
        {"lookup_matches_merged": "yes"},
        {"state_us_only": 1},
        {"contact_custom": "keep"},
        {"patch_new_custom": None},
        {"custom_delete_answer": 201},
        {"custom_delete_answer": True},
        {"merge_delay": -1},
        {"merge_delay": "soon"},
        {"contact_custom": "drop", "merge_delay": -1},  # all or nothing
    ],
)
def test_bad_behaviour_settings_are_400_and_change_nothing(
    control: httpx.Client, bad: dict[str, Any]
) -> None:
    before = control.get("/behaviour").json()
    response = control.post("/behaviour", json=bad)
    assert response.status_code == 400
    assert response.json()["code"] == 400 and response.json()["message"]
    assert control.get("/behaviour").json() == before


def test_start_up_behaviour_comes_from_the_config_and_survives_reset() -> None:
    config = SandboxConfig(behaviour=Behaviour(contact_custom="drop_unknown"))
    with SandboxServer(config) as server:
        url = f"{server.control_url}/behaviour"
        httpx.post(url, json={"contact_custom": "store"})
        httpx.post(f"{server.control_url}/reset")
        assert httpx.get(url).json()["contact_custom"] == "drop_unknown"


# state is kept only in the US ----------------------------------------------------------------


def test_state_outside_the_us_is_stored_as_null_on_create(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    de = _customer(api, source, "de", country="DE", state="NY", city="Berlin")
    assert (de["state"], de["address"]["state"], de["city"]) == (None, None, "Berlin")
    nowhere = _customer(api, source, "nowhere", state="NY")
    assert nowhere["state"] is None
    us = _customer(api, source, "us", country="US", state="US-NY")
    assert (us["state"], us["address"]["state"]) == ("US-NY", "US-NY")
    dropped = _state(control)["dropped"]
    assert dropped == [
        {"object": "customer", "uuid": de["uuid"], "field": "state"},
        {"object": "customer", "uuid": nowhere["uuid"], "field": "state"},
    ]


def test_state_outside_the_us_is_stored_as_null_on_patch(
    cm: chartmogul.Config, api: httpx.Client, source: str
) -> None:
    uuid = _customer(api, source, "c", country="US", state="CA")["uuid"]
    # The recorded case: PATCH country DE, state NY came back with state null.
    patched = chartmogul.Customer.modify(cm, uuid=uuid, data={"country": "DE", "state": "NY"}).get()
    assert (patched.country, patched.state, patched.address.state) == ("DE", None, None)
    back = api.patch(f"/customers/{uuid}", json={"country": "US", "state": "NY"}).json()
    assert back["state"] == "NY"
    assert api.patch(f"/customers/{uuid}", json={"state": "TX"}).json()["state"] == "TX"
    moved = api.patch(f"/customers/{uuid}", json={"country": "FR"}).json()
    assert moved["state"] is None  # a stored state does not outlive the move out of the US


def test_without_state_us_only_state_is_kept_anywhere(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    _behave(control, state_us_only=False)
    assert _customer(api, source, "de", country="DE", state="BE")["state"] == "BE"
    assert _state(control)["dropped"] == []


# DELETE .../attributes/custom ----------------------------------------------------------------


def _with_attributes(api: httpx.Client, source: str) -> str:
    uuid: str = _customer(api, source, "attrs")["uuid"]
    custom = [
        {"type": "String", "key": "plan", "value": "pro"},
        {"type": "Integer", "key": "seats", "value": 3},
    ]
    assert api.post(f"/customers/{uuid}/attributes/custom", json={"custom": custom}).is_success
    return uuid


def _delete(api: httpx.Client, uuid: str, keys: list[str]) -> httpx.Response:
    return api.request("DELETE", f"/customers/{uuid}/attributes/custom", json={"custom": keys})


def test_attribute_delete_answers_202_with_what_remains_and_a_message(
    api: httpx.Client, source: str
) -> None:
    uuid = _with_attributes(api, source)
    first = _delete(api, uuid, ["plan", "never_there"])
    assert (first.status_code, first.json()) == (202, {"custom": {"seats": 3}, "message": DELETED})
    last = _delete(api, uuid, ["seats"])
    assert (last.status_code, last.json()) == (202, {"message": DELETED})  # no "custom" at all
    assert api.get(f"/customers/{uuid}/attributes").json()["custom"] == {}


def test_attribute_delete_answers_204_or_200_when_set_so(
    cm: chartmogul.Config, api: httpx.Client, control: httpx.Client, source: str
) -> None:
    uuid = _with_attributes(api, source)
    _behave(control, custom_delete_answer=204)
    removed = chartmogul.CustomAttributes.remove(cm, uuid=uuid, data={"custom": ["plan"]}).get()
    assert removed is None  # 204, no body, as recorded in 2023
    _behave(control, custom_delete_answer=200)
    answer = _delete(api, uuid, ["nothing"])
    assert (answer.status_code, answer.json()) == (200, {"custom": {"seats": 3}})
    _behave(control, custom_delete_answer=202)
    removed = chartmogul.CustomAttributes.remove(cm, uuid=uuid, data={"custom": ["seats"]}).get()
    assert (removed.custom, removed.message) == (None, DELETED)


def test_attribute_delete_refuses_what_is_not_a_key_list(api: httpx.Client, source: str) -> None:
    uuid = _with_attributes(api, source)
    assert _delete(api, uuid, "plan").status_code == 422  # type: ignore[arg-type]
    assert _delete(api, uuid, ["bad key"]).status_code == 422
    assert api.get(f"/customers/{uuid}/attributes").json()["custom"] == {"plan": "pro", "seats": 3}


# Contact custom fields -----------------------------------------------------------------------


def _contact(api: httpx.Client, customer: str, source: str, custom: list[dict[str, Any]]) -> Any:
    response = api.post(
        "/contacts",
        json={"customer_uuid": customer, "data_source_uuid": source, "custom": custom},
    )
    assert response.status_code == 201, response.text
    return response.json()


FACEBOOK = [
    {"key": "Facebook", "value": "https://www.facebook.com/example"},
    {"key": "date_of_birth", "value": "1985-01-22"},
]


def test_contact_custom_fields_are_stored_by_default(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    customer = _customer(api, source, "c")["uuid"]
    contact = _contact(api, customer, source, FACEBOOK)
    assert contact["custom"] == {
        "Facebook": "https://www.facebook.com/example",
        "date_of_birth": "1985-01-22",
    }
    assert _state(control)["contacts"][0]["custom"] == contact["custom"]


def test_contact_custom_drop_answers_201_with_an_empty_custom(
    cm: chartmogul.Config, api: httpx.Client, control: httpx.Client, source: str
) -> None:
    _behave(control, contact_custom="drop")
    customer = _customer(api, source, "c")["uuid"]
    # The recorded case (chartmogul-go contacts.yaml): 201 with "custom": {}.
    contact = chartmogul.Contact.create(
        cm,
        data={"customer_uuid": customer, "data_source_uuid": source, "custom": FACEBOOK},
    ).get()
    assert contact.custom == {}
    patched = api.patch(f"/contacts/{contact.uuid}", json={"custom": [{"key": "x", "value": 1}]})
    assert (patched.status_code, patched.json()["custom"]) == (200, {})
    state = _state(control)
    assert state["contacts"][0]["custom"] == {}
    assert [d["field"] for d in state["dropped"]] == [
        "custom.Facebook",
        "custom.date_of_birth",
        "custom.x",
    ]
    assert {d["uuid"] for d in state["dropped"]} == {contact.uuid}


def test_contact_custom_drop_unknown_keeps_keys_the_account_has(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    customer = _customer(api, source, "c")["uuid"]
    toggle = [{"type": "Boolean", "key": "Toggle", "value": True}]
    api.post(f"/customers/{customer}/attributes/custom", json={"custom": toggle})
    earlier = _contact(api, customer, source, [{"key": "plan", "value": "pro"}])  # stored
    _behave(control, contact_custom="drop_unknown")
    contact = _contact(
        api,
        customer,
        source,
        [{"key": "Toggle", "value": False}, {"key": "plan", "value": "team"}, *FACEBOOK],
    )
    assert contact["custom"] == {"Toggle": False, "plan": "team"}
    assert earlier["custom"] == {"plan": "pro"}
    dropped = [d["field"] for d in _state(control)["dropped"]]
    assert dropped == ["custom.Facebook", "custom.date_of_birth"]


# PATCH /customers with custom keys never created ---------------------------------------------


def test_patch_creates_new_custom_keys_by_default_with_inferred_types(
    cm: chartmogul.Config, api: httpx.Client, control: httpx.Client, source: str
) -> None:
    uuid = _customer(api, source, "c")["uuid"]
    new = {"Toggle": True, "seats": 4, "ratio": 0.5, "channel": {"value": "x", "source": "crm"}}
    patched = chartmogul.Customer.modify(
        cm, uuid=uuid, data={"attributes": {"custom": new, "tags": ["wurst"]}}
    ).get()
    assert patched.attributes.custom == {"Toggle": True, "seats": 4, "ratio": 0.5, "channel": "x"}
    assert patched.attributes.tags == ["wurst"]
    assert _state(control)["custom_attribute_types"] == {
        "Toggle": "Boolean",
        "seats": "Integer",
        "ratio": "Decimal",
        "channel": "String",
    }


def test_patch_ignore_drops_new_keys_silently_and_updates_known_ones(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    uuid = _customer(api, source, "c")["uuid"]
    plan = [{"type": "String", "key": "plan", "value": "free"}]
    api.post(f"/customers/{uuid}/attributes/custom", json={"custom": plan})
    _behave(control, patch_new_custom="ignore")
    body = {"name": "Acme", "attributes": {"custom": {"plan": "pro", "brand_new": 1}}}
    patched = api.patch(f"/customers/{uuid}", json=body)
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["attributes"]["custom"]) == (
        "Acme",
        {"plan": "pro"},
    )
    typed = [{"type": "Integer", "key": "other_new", "value": 2}]
    assert api.patch(f"/customers/{uuid}", json={"attributes": {"custom": typed}}).is_success
    state = _state(control)
    assert "brand_new" not in state["custom_attribute_types"]
    assert [d["field"] for d in state["dropped"]] == ["custom.brand_new", "custom.other_new"]
    assert state["customers"][0]["attributes"]["custom"] == {"plan": "pro"}


def test_patch_reject_refuses_new_keys_with_422(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    _behave(control, patch_new_custom="reject")
    uuid = _customer(api, source, "c")["uuid"]
    refused = api.patch(f"/customers/{uuid}", json={"attributes": {"custom": {"brand_new": 1}}})
    assert refused.status_code == 422
    assert refused.json() == {
        "errors": {"custom.brand_new": "Attribute must first be created using the POST call."}
    }


def test_patch_new_custom_keeps_a_keys_first_type(api: httpx.Client, source: str) -> None:
    uuid = _customer(api, source, "c")["uuid"]
    seats = [{"type": "Integer", "key": "seats", "value": 1}]
    api.post(f"/customers/{uuid}/attributes/custom", json={"custom": seats})
    refused = api.patch(f"/customers/{uuid}", json={"attributes": {"custom": {"seats": "many"}}})
    assert refused.status_code == 422
    assert "custom.seats" in refused.json()["errors"]


# Custom attribute sources --------------------------------------------------------------------


def test_custom_attributes_carry_a_source_shown_only_in_the_state_dump(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    uuid = _customer(
        api,
        source,
        "c",
        attributes={"custom": [{"type": "String", "key": "a", "value": "x", "source": "Segment"}]},
    )["uuid"]
    custom = [
        {"type": "String", "key": "b", "value": "y"},
        {"type": "Integer", "key": "c", "value": 1, "source": "clearbit"},
    ]
    added = api.post(f"/customers/{uuid}/attributes/custom", json={"custom": custom}).json()
    assert added == {"custom": {"a": "x", "b": "y", "c": 1}}  # no source in answers
    api.put(
        f"/customers/{uuid}/attributes/custom",
        json={"custom": {"c": {"value": 2, "source": "integration2"}}},
    )
    api.patch(f"/customers/{uuid}", json={"attributes": {"custom": {"a": "z"}}})
    (dumped,) = _state(control)["customers"]
    assert dumped["custom_sources"] == {"a": "API", "b": "API", "c": "integration2"}
    api.request("DELETE", f"/customers/{uuid}/attributes/custom", json={"custom": ["b"]})
    assert _state(control)["customers"][0]["custom_sources"] == {"a": "API", "c": "integration2"}


@pytest.mark.parametrize("bad", ["", 7, "x" * 256])
def test_a_bad_source_is_422(api: httpx.Client, source: str, bad: object) -> None:
    uuid = _customer(api, source, "c")["uuid"]
    custom = [{"type": "String", "key": "a", "value": "x", "source": bad}]
    refused = api.post(f"/customers/{uuid}/attributes/custom", json={"custom": custom})
    assert refused.status_code == 422 and "custom.a" in refused.json()["errors"]
