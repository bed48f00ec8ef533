"""Bad input never yields a 5xx: arbitrary JSON thrown at every write endpoint."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        *["name", "email", "country", "status", "attributes", "custom", "tags", "external_id"],
        *["data_source_uuid", "customer_uuid", "position", "lead_created_at", "primary_contact"],
        *["from", "into", "type", "message_id", "timestamp", "sent_at", "company", "address"],
        *["move_to_new_customer", "source", "value", "key"],
    ]
)
BODIES = st.dictionaries(FIELDS, JSON, max_size=6) | JSON


def _targets(customer: str, contact: str) -> list[tuple[str, str]]:
    return [
        ("POST", "/v1/customers"),
        ("PATCH", f"/v1/customers/{customer}"),
        ("POST", "/v1/customers/merges"),
        ("POST", "/v1/customers/unmerges"),
        ("POST", f"/v1/customers/{customer}/attributes/custom"),
        ("PUT", f"/v1/customers/{customer}/attributes/custom"),
        ("DELETE", f"/v1/customers/{customer}/attributes/custom"),
        ("POST", f"/v1/customers/{customer}/attributes/tags"),
        ("POST", "/v1/customers/attributes/custom"),
        ("POST", "/v1/contacts"),
        ("PATCH", f"/v1/contacts/{contact}"),
        ("POST", "/v1/data_sources"),
        ("POST", "/segment-webhook/tok"),
        ("POST", "/_sandbox/behaviour"),
    ]


def test_arbitrary_bodies_never_cause_a_server_error(api: httpx.Client, source: str) -> None:
    customer = api.post("/customers", json={"data_source_uuid": source, "external_id": "f"})
    customer_uuid = customer.json()["uuid"]
    contact = api.post(f"/customers/{customer_uuid}/contacts", json={"data_source_uuid": source})
    targets = _targets(customer_uuid, contact.json()["uuid"])

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(target=st.sampled_from(targets), body=BODIES)
    def check(target: tuple[str, str], body: Any) -> None:
        method, path = target
        # json.dumps writes NaN and Infinity, which strict parsers (and httpx) refuse.
        content = json.dumps(body).encode()
        response = api.request(method, f"{api.base_url.join(path)}", content=content)
        assert response.status_code < 500, (method, path, body, response.text)

    check()
