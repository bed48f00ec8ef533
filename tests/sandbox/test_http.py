"""Exact status codes and bodies, checked with plain httpx."""

from __future__ import annotations

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.runner import SandboxServer

UNAUTHORIZED = {"code": 401, "message": "No valid API key provided", "param": None}


@pytest.mark.parametrize(
    "auth", [None, ("wrong-key", ""), ("", "sandbox-test-key")], ids=["none", "wrong", "empty"]
)
def test_a_missing_or_wrong_key_is_401_with_the_exact_body(
    sandbox_server: SandboxServer, auth: tuple[str, str] | None
) -> None:
    response = httpx.get(f"{sandbox_server.base_url}/ping", auth=auth)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_without_a_configured_key_any_non_empty_key_is_accepted() -> None:
    with SandboxServer(SandboxConfig()) as server:
        assert httpx.get(f"{server.base_url}/ping", auth=("anything", "")).status_code == 200
        assert httpx.get(f"{server.base_url}/ping", auth=("", "")).status_code == 401
        assert httpx.get(f"{server.base_url}/ping").json() == UNAUTHORIZED


def test_customer_json_has_the_real_keys_and_blanks(api: httpx.Client, source: str) -> None:
    body = api.post("/customers", json={"data_source_uuid": source, "external_id": "x"}).json()
    for hyphenated in ("customer-since", "billing-system-url", "chartmogul-url"):
        assert hyphenated in body
    assert (body["name"], body["email"], body["company"]) == ("", "", "")
    assert (body["country"], body["zip"], body["owner"], body["lead_created_at"]) == (None,) * 4
    assert body["attributes"] == {"custom": {}, "clearbit": {}, "stripe": {}, "tags": []}
    assert body["address"] == {"country": None, "state": None, "city": None, "address_zip": None}
    assert body["data_source_uuids"] == [source] and body["external_ids"] == ["x"]


def test_lists_carry_only_the_keys_the_official_client_accepts(
    api: httpx.Client, source: str
) -> None:
    assert set(api.get("/customers").json()) == {"entries", "has_more", "cursor"}
    assert set(api.get("/contacts").json()) == {"entries", "has_more", "cursor"}
    assert set(api.get("/data_sources").json()) == {"data_sources"}


def test_duplicate_external_id_is_422_with_the_exact_message(
    api: httpx.Client, source: str
) -> None:
    body = {"data_source_uuid": source, "external_id": "same"}
    assert api.post("/customers", json=body).status_code == 201
    duplicate = api.post("/customers", json=body)
    assert duplicate.status_code == 422
    assert duplicate.json() == {
        "errors": {"external_id": "The external ID for this customer already exists in our system."}
    }


def test_the_same_external_id_in_another_data_source_is_fine(
    api: httpx.Client, source: str
) -> None:
    other = api.post("/data_sources", json={"name": "Other"}).json()["uuid"]
    for ds in (source, other):
        assert api.post("/customers", json={"data_source_uuid": ds, "external_id": "e"}).is_success


@pytest.mark.parametrize(
    ("custom", "field"),
    [
        ([{"type": "String", "key": "bad-key", "value": "x"}], "custom"),
        ([{"type": "String", "key": "long", "value": "x" * 256}], "custom.long"),
        ([{"type": "Integer", "key": "n", "value": "1.5"}], "custom.n"),
        ([{"type": "Boolean", "key": "b", "value": "yes"}], "custom.b"),
        ([{"type": "Timestamp", "key": "t", "value": "yesterday"}], "custom.t"),
        ([{"type": "Colour", "key": "c", "value": "red"}], "custom.c"),
    ],
)
def test_bad_custom_attributes_are_422(
    api: httpx.Client, source: str, custom: list[dict[str, object]], field: str
) -> None:
    uuid = api.post("/customers", json={"data_source_uuid": source, "external_id": "e"}).json()[
        "uuid"
    ]
    response = api.post(f"/customers/{uuid}/attributes/custom", json={"custom": custom})
    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_a_key_keeps_its_first_type_across_customers(api: httpx.Client, source: str) -> None:
    first, second = (
        api.post("/customers", json={"data_source_uuid": source, "external_id": e}).json()["uuid"]
        for e in ("a", "b")
    )
    ok = [{"type": "Integer", "key": "seats", "value": 3}]
    assert api.post(f"/customers/{first}/attributes/custom", json={"custom": ok}).is_success
    retyped = [{"type": "String", "key": "seats", "value": "3"}]
    response = api.post(f"/customers/{second}/attributes/custom", json={"custom": retyped})
    assert response.status_code == 422
    wrong_value = api.put(f"/customers/{second}/attributes/custom", json={"custom": {"seats": "x"}})
    assert wrong_value.status_code == 422
    assert api.put(
        f"/customers/{second}/attributes/custom", json={"custom": {"seats": "7"}}
    ).json() == {"custom": {"seats": 7}}


def test_put_of_a_key_never_created_is_422(api: httpx.Client, source: str) -> None:
    uuid = api.post("/customers", json={"data_source_uuid": source, "external_id": "e"}).json()[
        "uuid"
    ]
    response = api.put(f"/customers/{uuid}/attributes/custom", json={"custom": {"new": 1}})
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        *[("TRUE", True), ("true", True), ("t", True), ("1", True), (1, True)],
        *[("FALSE", False), ("false", False), ("f", False), ("0", False), (False, False)],
    ],
)
def test_boolean_spellings(
    api: httpx.Client, source: str, spelling: object, expected: bool
) -> None:
    uuid = api.post("/customers", json={"data_source_uuid": source, "external_id": "e"}).json()[
        "uuid"
    ]
    custom = [{"type": "Boolean", "key": "flag", "value": spelling}]
    response = api.post(f"/customers/{uuid}/attributes/custom", json={"custom": custom})
    assert response.json() == {"custom": {"flag": expected}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data_source_uuid": None}, "data_source_uuid"),
        ({"data_source_uuid": "ds_nope"}, "data_source_uuid"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": 7}, "external_id"),
        ({"country": "Germany"}, "country"),
        ({"status": "Active"}, "status"),
        ({"lead_created_at": "soon"}, "lead_created_at"),
        ({"name": 5}, "name"),
    ],
)
def test_bad_customer_bodies_are_422(
    api: httpx.Client, source: str, body: dict[str, object], field: str
) -> None:
    full = {"data_source_uuid": source, "external_id": "e", **body}
    response = api.post("/customers", json=full)
    assert response.status_code == 422
    assert field in response.json()["errors"]


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", "/customers", b"{not json"),
        ("POST", "/customers", b"[1, 2]"),
        ("POST", "/data_sources", b""),
        ("GET", "/customers?cursor=%%%", None),
        ("GET", "/customers?per_page=lots", None),
        ("GET", "/customers?page=2", None),
    ],
)
def test_malformed_requests_are_400_never_500(
    api: httpx.Client, method: str, path: str, content: bytes | None
) -> None:
    response = api.request(method, path, content=content)
    assert response.status_code == 400
    assert response.json()["code"] == 400


def test_unknown_paths_and_methods_answer_json(api: httpx.Client) -> None:
    missing = api.get("/invoices")
    assert missing.status_code == 404
    assert missing.json() == {"code": 404, "message": "Not Found", "param": None}
    assert api.put("/contacts").json()["code"] == 405


def test_unknown_uuids_are_404_in_chartmogul_style(api: httpx.Client) -> None:
    for path in ("/customers/cus_nope", "/contacts/con_nope", "/customers/cus_nope/attributes"):
        response = api.get(path)
        assert response.status_code == 404
        assert set(response.json()) == {"code", "message", "param"}
    assert api.patch("/customers/cus_nope", json={"name": "x"}).status_code == 404
    assert api.get("/data_sources/ds_nope").status_code == 404


def test_contact_needs_an_existing_customer(api: httpx.Client, source: str) -> None:
    response = api.post("/contacts", json={"customer_uuid": "cus_x", "data_source_uuid": source})
    assert response.status_code == 422
    assert "customer_uuid" in response.json()["errors"]
    missing = api.post("/customers/cus_x/contacts", json={"data_source_uuid": source})
    assert missing.status_code == 404


def test_contact_delete_is_200_empty_object_and_customer_delete_is_204(
    api: httpx.Client, source: str
) -> None:
    customer = api.post("/customers", json={"data_source_uuid": source, "external_id": "e"}).json()
    contact = api.post(
        f"/customers/{customer['uuid']}/contacts", json={"data_source_uuid": source}
    ).json()
    deleted = api.delete(f"/contacts/{contact['uuid']}")
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert api.delete(f"/customers/{customer['uuid']}").status_code == 204


def test_data_source_names_are_required_and_unique(api: httpx.Client) -> None:
    assert api.post("/data_sources", json={"name": "A"}).status_code == 200
    assert api.post("/data_sources", json={"name": "A"}).json() == {
        "errors": {"name": "Has already been taken."}
    }
    assert api.post("/data_sources", json={}).status_code == 422


def test_patch_accepts_custom_as_a_typed_list_too(api: httpx.Client, source: str) -> None:
    uuid = api.post("/customers", json={"data_source_uuid": source, "external_id": "e"}).json()[
        "uuid"
    ]
    custom = [{"type": "Decimal", "key": "score", "value": "2.5"}]
    body = api.patch(f"/customers/{uuid}", json={"attributes": {"custom": custom}}).json()
    assert body["attributes"]["custom"] == {"score": 2.5}


def test_search_with_associated_emails_also_matches_contacts(
    api: httpx.Client, source: str
) -> None:
    owner = api.post(
        "/customers", json={"data_source_uuid": source, "external_id": "o", "email": "boss@x.co"}
    ).json()
    api.post(
        f"/customers/{owner['uuid']}/contacts",
        json={"data_source_uuid": source, "email": "dev@x.co"},
    )
    assert api.get("/customers/search", params={"email": "dev@x.co"}).status_code == 404
    found = api.get(
        "/customers/search", params={"email": "dev@x.co", "with_associated_emails": "true"}
    ).json()
    assert [c["uuid"] for c in found["entries"]] == [owner["uuid"]]
