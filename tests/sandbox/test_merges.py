"""Customer merges and unmerges as ChartMogul records them, driven by the official client where it
has the call, and the lookups that do (or do not) see merged-in ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chartmogul
import httpx
import pytest

from tests.sandbox.helpers import create_customer as _customer
from tests.support.processes import wait_for

NOT_FOUND = {"code": 404, "message": "Customer not found", "param": "customer_uuid"}


def _other_source(api: httpx.Client) -> str:
    uuid: str = api.post("/data_sources", json={"name": "Billing"}).json()["uuid"]
    return uuid


def _merge(api: httpx.Client, gone: str, keep: str) -> None:
    body = {"from": {"customer_uuid": gone}, "into": {"customer_uuid": keep}}
    response = api.post("/customers/merges", json=body)
    assert (response.status_code, response.json()) == (202, {})


def _lookup(api: httpx.Client, **query: str) -> list[str]:
    response = api.get("/customers", params=query)
    assert response.status_code == 200
    return [c["uuid"] for c in response.json()["entries"]]


def test_official_merge_folds_the_lead_into_the_billing_customer(
    cm: chartmogul.Config, api: httpx.Client, source: str
) -> None:
    billing = _other_source(api)
    keep = _customer(api, billing, "cus_stripe_1", name="Acme")
    seats = {"type": "Integer", "key": "seats", "value": 5}
    attributes = {"tags": ["segment"], "custom": [seats]}
    gone = _customer(api, source, "group-1", name="Acme lead", attributes=attributes)
    chartmogul.Customer.createContact(
        cm, uuid=gone["uuid"], data={"data_source_uuid": source, "email": "ann@acme.io"}
    ).get()
    result = chartmogul.Customer.merge(
        cm,
        data={"from": {"customer_uuid": gone["uuid"]}, "into": {"customer_uuid": keep["uuid"]}},
    ).get()
    assert result is None  # 202 {}
    merged = chartmogul.Customer.retrieve(cm, uuid=keep["uuid"]).get()
    assert (merged.external_id, merged.data_source_uuid, merged.name) == (
        "cus_stripe_1",
        billing,
        "Acme",
    )
    # Parallel lists, one entry per identity: index i of one goes with index i of the other.
    assert merged.external_ids == ["cus_stripe_1", "group-1"]
    assert merged.data_source_uuids == [billing, source]
    assert merged.attributes.tags == ["segment"] and merged.attributes.custom == {"seats": 5}
    (contact,) = chartmogul.Customer.contacts(cm, uuid=keep["uuid"]).get().entries
    assert (contact.email, contact.customer_external_id) == ("ann@acme.io", "cus_stripe_1")
    with pytest.raises(chartmogul.APIError) as caught:
        chartmogul.Customer.retrieve(cm, uuid=gone["uuid"]).get()
    assert caught.value.__cause__.response.status_code == 404


def test_the_merged_away_uuid_answers_404_everywhere(api: httpx.Client, source: str) -> None:
    keep, gone = _customer(api, source, "keep"), _customer(api, source, "gone")
    _merge(api, gone["uuid"], keep["uuid"])
    survivor = api.get(f"/customers/{keep['uuid']}").json()
    assert survivor["data_source_uuids"] == [source, source]  # as recorded: not deduplicated
    uuid = gone["uuid"]
    custom = {"custom": [{"type": "String", "key": "plan", "value": "pro"}]}
    for response in (
        api.get(f"/customers/{uuid}"),
        api.patch(f"/customers/{uuid}", json={"name": "x"}),
        api.post(f"/customers/{uuid}/attributes/custom", json=custom),
        api.post(f"/customers/{uuid}/contacts", json={"data_source_uuid": source}),
        api.delete(f"/customers/{uuid}"),
    ):
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    contact = api.post("/contacts", json={"customer_uuid": uuid, "data_source_uuid": source})
    assert contact.status_code == 422
    assert contact.json() == {"errors": {"customer_uuid": "Customer not found."}}


def test_creating_a_merged_in_id_again_is_422_already_exists(
    api: httpx.Client, source: str
) -> None:
    keep, gone = _customer(api, _other_source(api), "billing"), _customer(api, source, "seg")
    _merge(api, gone["uuid"], keep["uuid"])
    again = api.post("/customers", json={"data_source_uuid": source, "external_id": "seg"})
    assert again.status_code == 422
    assert again.json() == {
        "errors": {"external_id": "The external ID for this customer already exists in our system."}
    }


def test_merge_by_data_source_and_external_id(api: httpx.Client, source: str) -> None:
    billing = _other_source(api)
    keep, gone = _customer(api, billing, "b1"), _customer(api, source, "s1")
    body = {
        "from": {"data_source_uuid": source, "external_id": "s1"},
        "into": {"data_source_uuid": billing, "external_id": "b1"},
    }
    assert api.post("/customers/merges", json=body).status_code == 202
    assert api.get(f"/customers/{gone['uuid']}").status_code == 404
    assert api.get(f"/customers/{keep['uuid']}").json()["external_ids"] == ["b1", "s1"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (
            lambda keep: {"from": {"customer_uuid": "cus_nope"}, "into": {"customer_uuid": keep}},
            404,
        ),
        (lambda keep: {"from": {"customer_uuid": keep}, "into": {"customer_uuid": keep}}, 422),
        (lambda keep: {"from": keep, "into": {"customer_uuid": keep}}, 422),
    ],
    ids=["unknown", "itself", "not-an-object"],
)
def test_bad_merges_are_refused(
    api: httpx.Client, source: str, body: Callable[[str], dict[str, Any]], status: int
) -> None:
    keep = _customer(api, source, "keep")["uuid"]
    assert api.post("/customers/merges", json=body(keep)).status_code == status
    assert api.get(f"/customers/{keep}").status_code == 200


def test_lookups_match_merged_ids_when_lookup_matches_merged(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    assert control.get("/behaviour").json()["lookup_matches_merged"] is True  # the default
    billing = _other_source(api)
    keep, gone = _customer(api, billing, "cus_b"), _customer(api, source, "grp")
    _merge(api, gone["uuid"], keep["uuid"])
    survivor = [keep["uuid"]]
    assert _lookup(api, external_id="grp", data_source_uuid=source) == survivor
    assert _lookup(api, external_id="grp") == survivor
    assert _lookup(api, data_source_uuid=source) == survivor
    assert _lookup(api, external_id="cus_b", data_source_uuid=billing) == survivor


def test_lookups_match_only_main_ids_when_not_lookup_matches_merged(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    assert control.post("/behaviour", json={"lookup_matches_merged": False}).status_code == 200
    billing = _other_source(api)
    keep, gone = _customer(api, billing, "cus_b"), _customer(api, source, "grp")
    _merge(api, gone["uuid"], keep["uuid"])
    assert _lookup(api, external_id="grp", data_source_uuid=source) == []
    assert _lookup(api, external_id="grp") == []
    assert _lookup(api, data_source_uuid=source) == []
    assert _lookup(api, external_id="cus_b", data_source_uuid=billing) == [keep["uuid"]]
    # The unfiltered list still shows the survivor with its lists: the one way left to find it.
    (listed,) = api.get("/customers").json()["entries"]
    assert list(zip(listed["data_source_uuids"], listed["external_ids"], strict=True)) == [
        (billing, "cus_b"),
        (source, "grp"),
    ]


def test_official_unmerge_splits_the_identity_off_as_a_new_customer(
    cm: chartmogul.Config, api: httpx.Client, source: str
) -> None:
    billing = _other_source(api)
    keep = _customer(api, billing, "cus_b", name="Acme")
    gone = _customer(api, source, "grp", name="Acme lead", attributes={"tags": ["lead"]})
    api.post(f"/customers/{gone['uuid']}/contacts", json={"data_source_uuid": source})
    _merge(api, gone["uuid"], keep["uuid"])
    result = chartmogul.Customer.unmerge(
        cm,
        data={
            "customer_uuid": keep["uuid"],
            "data_source_uuid": source,
            "external_id": "grp",
            "move_to_new_customer": [],
        },
    ).get()
    assert result is None  # 202 {}
    survivor = chartmogul.Customer.retrieve(cm, uuid=keep["uuid"]).get()
    assert (survivor.external_ids, survivor.data_source_uuids) == (["cus_b"], [billing])
    (split,) = chartmogul.Customer.all(cm, external_id="grp", data_source_uuid=source).get().entries
    assert split.uuid not in (keep["uuid"], gone["uuid"])  # a new customer, not the old uuid
    assert (split.name, split.external_ids, split.attributes.tags) == (
        "Acme lead",
        ["grp"],
        ["lead"],
    )
    assert api.get(f"/customers/{gone['uuid']}").status_code == 404
    # Contacts are not among move_to_new_customer's objects: they stay on the survivor.
    assert len(api.get(f"/customers/{keep['uuid']}/contacts").json()["entries"]) == 1
    assert api.get(f"/customers/{split.uuid}/contacts").json()["entries"] == []


def test_unmerge_by_identity_alone(api: httpx.Client, source: str) -> None:
    keep, gone = _customer(api, source, "keep"), _customer(api, source, "gone")
    _merge(api, gone["uuid"], keep["uuid"])
    response = api.post(
        "/customers/unmerges", json={"data_source_uuid": source, "external_id": "gone"}
    )
    assert (response.status_code, response.json()) == (202, {})
    assert len(_lookup(api, data_source_uuid=source)) == 2


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"external_id": "keep"}, 422, "external_id"),  # its own main id
        ({"external_id": "never"}, 422, "external_id"),
        ({"customer_uuid": "cus_nope"}, 404, None),
        ({"move_to_new_customer": ["contacts"]}, 422, "move_to_new_customer"),
        ({"external_id": None}, 422, "external_id"),
    ],
    ids=["main-id", "unknown-id", "unknown-customer", "bad-move", "no-id"],
)
def test_bad_unmerges_are_refused(
    api: httpx.Client, source: str, change: dict[str, Any], status: int, field: str | None
) -> None:
    keep, gone = _customer(api, source, "keep"), _customer(api, source, "gone")
    _merge(api, gone["uuid"], keep["uuid"])
    body = {"customer_uuid": keep["uuid"], "data_source_uuid": source, "external_id": "gone"}
    response = api.post("/customers/unmerges", json={**body, **change})
    assert response.status_code == status
    if field is not None:
        assert field in response.json()["errors"]
    else:
        assert response.json() == NOT_FOUND


def test_merge_delay_makes_the_merge_asynchronous(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    control.post("/behaviour", json={"merge_delay": 0.3})
    keep, gone = _customer(api, source, "keep"), _customer(api, source, "gone")
    _merge(api, gone["uuid"], keep["uuid"])
    assert api.get(f"/customers/{gone['uuid']}").status_code == 200  # accepted, not yet done
    assert control.get("/state").json()["pending_jobs"] == 1
    wait_for(
        lambda: api.get(f"/customers/{gone['uuid']}").status_code == 404, 5, "the merge to happen"
    )
    assert api.get(f"/customers/{keep['uuid']}").json()["external_ids"] == ["keep", "gone"]
    assert control.get("/state").json()["pending_jobs"] == 0
