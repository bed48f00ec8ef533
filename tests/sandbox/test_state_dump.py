"""GET /_sandbox/state shows exactly what arrived."""

from __future__ import annotations

import httpx


def test_state_lists_customers_contacts_types_and_sources(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    customer = api.post(
        "/customers",
        json={
            "data_source_uuid": source,
            "external_id": "g1",
            "name": "Soft Tech",
            "attributes": {"custom": [{"type": "Integer", "key": "seats", "value": 5}]},
        },
    ).json()
    api.post(
        "/contacts",
        json={
            "customer_uuid": customer["uuid"],
            "data_source_uuid": source,
            "email": "a@b.co",
            "custom": [{"key": "plan", "value": "pro"}],
        },
    )
    state = control.get("/state").json()
    assert [ds["uuid"] for ds in state["data_sources"]] == [source]
    (dumped,) = state["customers"]
    assert dumped["external_id"] == "g1" and dumped["attributes"]["custom"] == {"seats": 5}
    (contact,) = state["contacts"]
    assert contact["customer_uuid"] == customer["uuid"] and contact["custom"] == {"plan": "pro"}
    assert state["custom_attribute_types"] == {"seats": "Integer"}
    assert state["webhook_receipts"] == []


def test_deleting_a_data_source_removes_its_customers_and_contacts(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    customer = api.post("/customers", json={"data_source_uuid": source, "external_id": "e"})
    api.post(f"/customers/{customer.json()['uuid']}/contacts", json={"data_source_uuid": source})
    assert api.delete(f"/data_sources/{source}").status_code == 204
    state = control.get("/state").json()
    assert state["customers"] == [] and state["contacts"] == []
