"""The Segment webhook receiver: the checks of ChartMogul (Actions), and the receipts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.runner import SandboxServer
from tests.ingest.samples import ACTIONS_CUSTOMER

TOKEN = "tok"  # the session sandbox's webhook token (conftest)
MINIMAL_CONTACT = {
    "type": "Send Contact",
    "message_id": "1",
    "timestamp": "2024-01-01T10:00:00Z",
    "sent_at": "2024-01-01T10:01:00Z",
}
VALID_CUSTOMER = ACTIONS_CUSTOMER  # Segment's own "processes valid input" vector


def _post(server: SandboxServer, payload: Any, token: str = TOKEN) -> httpx.Response:
    return httpx.post(
        server.webhook_url(token), json=payload, headers={"user-agent": "Segment (Actions)"}
    )


def test_segments_own_test_vectors_are_accepted_and_recorded(
    sandbox_server: SandboxServer, control: httpx.Client
) -> None:
    contact = {**MINIMAL_CONTACT, "user_id": "u1", "anonymous_id": "a1"}
    assert _post(sandbox_server, contact).status_code == 200
    assert _post(sandbox_server, VALID_CUSTOMER).status_code == 200
    receipts = control.get("/state").json()["webhook_receipts"]
    assert [r["payload"] for r in receipts] == [contact, VALID_CUSTOMER]
    assert receipts[0]["user_agent"] == "Segment (Actions)"
    assert receipts[0]["content_type"] == "application/json"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (MINIMAL_CONTACT, "user_id and/or anonymous_id"),
        ({**MINIMAL_CONTACT, "user_id": "u1"}, "no information of interest"),
        ({**MINIMAL_CONTACT, "anonymous_id": "a1"}, "no information of interest"),
        ({**MINIMAL_CONTACT, "user_id": "u1", "company": {"name": "X"}}, "company.id"),
        ({**MINIMAL_CONTACT, "user_id": "u1", "email": None}, "'email'"),
        ({**MINIMAL_CONTACT, "user_id": "u1", "email": ""}, "'email'"),
        ({**MINIMAL_CONTACT, "user_id": "u1", "traits": {}}, "unexpected fields"),
        ({**MINIMAL_CONTACT, "user_id": "u1", "name": "A", "timestamp": "noon"}, "timestamp"),
        ({**VALID_CUSTOMER, "type": "Send Thing"}, "type"),
        ({k: v for k, v in VALID_CUSTOMER.items() if k != "user_id"}, "'user_id'"),
        ({k: v for k, v in VALID_CUSTOMER.items() if k != "group_id"}, "'group_id'"),
        ({k: v for k, v in VALID_CUSTOMER.items() if k != "sent_at"}, "'sent_at'"),
        ({**VALID_CUSTOMER, "address": {"zip": "1"}}, "address"),
        ([VALID_CUSTOMER], "JSON object"),
    ],
)
def test_payloads_segment_would_not_send_are_rejected(
    sandbox_server: SandboxServer, control: httpx.Client, payload: Any, reason: str
) -> None:
    response = _post(sandbox_server, payload)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert control.get("/state").json()["webhook_receipts"] == []


def test_the_connection_test_posts_an_empty_object(
    sandbox_server: SandboxServer, control: httpx.Client
) -> None:
    assert _post(sandbox_server, {}).status_code == 200
    assert control.get("/state").json()["webhook_receipts"] == []


def test_a_wrong_token_is_404(sandbox_server: SandboxServer) -> None:
    assert _post(sandbox_server, VALID_CUSTOMER, token="other").status_code == 404


def test_full_payloads_are_accepted(sandbox_server: SandboxServer) -> None:
    contact = {
        **MINIMAL_CONTACT,
        "user_id": "u1",
        "email": "a@b.co",
        "first_name": "A",
        "last_name": "B",
        "linked_in": "https://linkedin.com/in/a",
        "company": {"id": "g1", "name": "Soft Tech"},
    }
    customer = {
        **VALID_CUSTOMER,
        "created_at": "2021-02-01T00:00:00.000Z",
        # Segment strips empty strings at the root only.
        "address": {"city": "Berlin", "postal_code": "10115", "country": "DE", "street": ""},
    }
    assert _post(sandbox_server, contact).status_code == 200
    assert _post(sandbox_server, customer).status_code == 200


def test_faults_apply_to_the_webhook_too(
    sandbox_server: SandboxServer, control: httpx.Client
) -> None:
    control.post("/faults", json={"error_rates": {"503": 1.0}})
    assert _post(sandbox_server, VALID_CUSTOMER).status_code == 503
    stats = control.get("/stats").json()
    assert stats["by_endpoint"]["POST /segment-webhook/{token}"] == {"503": 1}
