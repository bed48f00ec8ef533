"""Every endpoint the relay uses, driven by ChartMogul's own Python client."""

from __future__ import annotations

import datetime as dt
import time

import chartmogul
import chartmogul.resource
import httpx
import pytest
import requests
from chartmogul import retry_request


def _customer(cm: chartmogul.Config, source: str, external_id: str, **extra: object) -> object:
    data = {"data_source_uuid": source, "external_id": external_id, **extra}
    return chartmogul.Customer.create(cm, data=data).get()


def test_ping_answers_pong(cm: chartmogul.Config) -> None:
    assert chartmogul.Ping.ping(cm).get().data == "pong!"


def test_data_sources_create_list_retrieve_destroy(cm: chartmogul.Config) -> None:
    created = chartmogul.DataSource.create(cm, data={"name": "In-house billing"}).get()
    assert created.uuid.startswith("ds_")
    assert isinstance(created.created_at, dt.datetime)
    listed = chartmogul.DataSource.all(cm).get()
    assert [ds.uuid for ds in listed.data_sources] == [created.uuid]
    assert chartmogul.DataSource.retrieve(cm, uuid=created.uuid).get().name == "In-house billing"
    chartmogul.DataSource.destroy(cm, uuid=created.uuid).get()
    assert chartmogul.DataSource.all(cm).get().data_sources == []


def test_customer_create_parses_with_the_official_schema(
    cm: chartmogul.Config, source: str
) -> None:
    customer = _customer(
        cm,
        source,
        "cus_001",
        name="Adam Smith",
        country="DE",
        city="Berlin",
        lead_created_at=dt.datetime(2022, 10, 14),
        attributes={
            "tags": ["important"],
            "custom": [
                {"type": "String", "key": "channel", "value": "Facebook"},
                {"type": "Integer", "key": "age", "value": 18},
            ],
        },
    )
    assert customer.uuid.startswith("cus_")
    assert customer.external_id == "cus_001"
    assert customer.email == "" and customer.company == ""
    assert customer.address.country == "Germany" and customer.country == "DE"
    assert customer.lead_created_at == dt.datetime(2022, 10, 14, tzinfo=dt.UTC)
    assert customer.attributes.custom == {"channel": "Facebook", "age": 18}
    assert customer.attributes.tags == ["important"]
    assert customer.status == "New Lead"


def test_duplicate_external_id_is_an_api_error(cm: chartmogul.Config, source: str) -> None:
    _customer(cm, source, "dup")
    with pytest.raises(chartmogul.APIError) as caught:
        _customer(cm, source, "dup")
    response = caught.value.__cause__.response
    assert response.status_code == 422
    assert "already exists" in response.json()["errors"]["external_id"]


def test_customer_retrieve_modify_destroy(cm: chartmogul.Config, source: str) -> None:
    created = _customer(cm, source, "c1", name="Before")
    chartmogul.CustomAttributes.add(
        cm,
        uuid=created.uuid,
        data={"custom": [{"type": "Boolean", "key": "Toggle", "value": True}]},
    ).get()
    modified = chartmogul.Customer.modify(
        cm,
        uuid=created.uuid,
        data={"name": "After", "company": "Curry 42", "attributes": {"custom": {"Toggle": "f"}}},
    ).get()
    assert (modified.name, modified.company) == ("After", "Curry 42")
    assert modified.attributes.custom == {"Toggle": False}
    assert chartmogul.Customer.retrieve(cm, uuid=created.uuid).get().name == "After"
    chartmogul.Customer.destroy(cm, uuid=created.uuid).get()
    with pytest.raises(chartmogul.APIError) as caught:
        chartmogul.Customer.retrieve(cm, uuid=created.uuid).get()
    assert caught.value.__cause__.response.status_code == 404


def test_customer_list_filters_and_cursor_pagination(cm: chartmogul.Config, source: str) -> None:
    other = chartmogul.DataSource.create(cm, data={"name": "Other"}).get().uuid
    for index in range(5):
        _customer(cm, source, f"ext{index}")
    _customer(cm, other, "ext0")
    both = chartmogul.Customer.all(cm, external_id="ext0").get()
    assert len(both.entries) == 2
    one = chartmogul.Customer.all(cm, external_id="ext0", data_source_uuid=other).get()
    assert [c.data_source_uuid for c in one.entries] == [other]
    seen, cursor = [], None
    while True:
        page = chartmogul.Customer.all(
            cm, data_source_uuid=source, per_page=2, **({"cursor": cursor} if cursor else {})
        ).get()
        seen += [c.external_id for c in page.entries]
        if not page.has_more:
            break
        cursor = page.cursor
    assert seen == [f"ext{i}" for i in range(5)]


def test_customer_search_by_email_and_404(cm: chartmogul.Config, source: str) -> None:
    _customer(cm, source, "a", email="Anna@Example.com")
    found = chartmogul.Customer.search(cm, email="anna@example.com").get()
    assert [c.external_id for c in found.entries] == ["a"]
    with pytest.raises(chartmogul.APIError) as caught:
        chartmogul.Customer.search(cm, email="nobody@example.com").get()
    body = caught.value.__cause__.response.json()
    assert body == {
        "code": 404,
        "message": 'Can\'t find any customers with email: "nobody@example.com"',
        "param": "email",
    }


def test_custom_attributes_add_update_remove_and_retrieve(
    cm: chartmogul.Config, source: str
) -> None:
    uuid = _customer(cm, source, "attrs").uuid
    added = chartmogul.CustomAttributes.add(
        cm,
        uuid=uuid,
        data={
            "custom": [
                {"type": "String", "key": "StringKey", "value": "String Value"},
                {"type": "Integer", "key": "integer_key", "value": 1234},
                {"type": "Timestamp", "key": "timestamp_key", "value": "2016-01-31 00:00:00 UTC"},
                {"type": "Boolean", "key": "boolean_key", "value": True},
                {"type": "Decimal", "key": "ratio", "value": 0.5},
            ]
        },
    ).get()
    assert added.custom["timestamp_key"] == "2016-01-31T00:00:00.000Z"
    updated = chartmogul.CustomAttributes.update(
        cm, uuid=uuid, data={"custom": {"integer_key": 5678, "StringKey": {"value": "x"}}}
    ).get()
    assert updated.custom["integer_key"] == 5678 and updated.custom["StringKey"] == "x"
    removed = chartmogul.CustomAttributes.remove(
        cm, uuid=uuid, data={"custom": ["ratio", "boolean_key"]}
    ).get()
    assert set(removed.custom) == {"StringKey", "integer_key", "timestamp_key"}
    everything = chartmogul.Attributes.retrieve(cm, uuid=uuid).get()
    assert everything.custom == removed.custom
    assert everything.tags == [] and everything.stripe == {} and everything.clearbit == {}


def test_tags_add_without_duplicates_and_remove(cm: chartmogul.Config, source: str) -> None:
    uuid = _customer(cm, source, "tags").uuid
    tags = chartmogul.Tags.add(cm, uuid=uuid, data={"tags": ["a", "b", "a"]}).get()
    assert tags.tags == ["a", "b"]
    assert chartmogul.Tags.add(cm, uuid=uuid, data={"tags": ["b", "c"]}).get().tags == [
        "a",
        "b",
        "c",
    ]
    assert chartmogul.Tags.remove(cm, uuid=uuid, data={"tags": ["b"]}).get().tags == ["a", "c"]


def test_contacts_create_retrieve_modify_destroy(cm: chartmogul.Config, source: str) -> None:
    customer = _customer(cm, source, "withcontacts")
    contact = chartmogul.Contact.create(
        cm,
        data={
            "customer_uuid": customer.uuid,
            "data_source_uuid": source,
            "first_name": "Adam",
            "email": "adam@example.com",
            "custom": [{"key": "Facebook", "value": "https://facebook.com/x"}],
        },
    ).get()
    assert contact.uuid.startswith("con_")
    assert contact.custom == {"Facebook": "https://facebook.com/x"}
    assert contact.position == 1 and contact.last_name is None
    assert contact.customer_external_id == "withcontacts"
    modified = chartmogul.Contact.modify(
        cm,
        uuid=contact.uuid,
        data={"last_name": "Smith", "position": 9, "custom": [{"key": "Toggle", "value": False}]},
    ).get()
    assert (modified.last_name, modified.position) == ("Smith", 9)
    assert modified.custom == {"Facebook": "https://facebook.com/x", "Toggle": False}
    assert chartmogul.Contact.retrieve(cm, uuid=contact.uuid).get().last_name == "Smith"
    chartmogul.Contact.destroy(cm, uuid=contact.uuid).get()
    assert chartmogul.Contact.all(cm).get().entries == []


def test_contacts_under_a_customer_and_list_filters(cm: chartmogul.Config, source: str) -> None:
    first = _customer(cm, source, "first")
    second = _customer(cm, source, "second")
    for index in range(3):
        chartmogul.Customer.createContact(
            cm,
            uuid=first.uuid,
            data={"data_source_uuid": source, "email": f"p{index}@example.com"},
        ).get()
    chartmogul.Contact.create(
        cm,
        data={"customer_uuid": second.uuid, "data_source_uuid": source, "email": "p0@example.com"},
    ).get()
    by_email = chartmogul.Contact.all(cm, email="p0@example.com").get()
    assert {c.customer_uuid for c in by_email.entries} == {first.uuid, second.uuid}
    by_external = chartmogul.Contact.all(cm, customer_external_id="second").get()
    assert [c.customer_uuid for c in by_external.entries] == [second.uuid]
    assert len(chartmogul.Customer.contacts(cm, uuid=first.uuid).get().entries) == 3
    page = chartmogul.Contact.all(cm, customer_uuid=first.uuid, per_page=2).get()
    assert len(page.entries) == 2 and page.has_more and page.cursor
    rest = chartmogul.Contact.all(
        cm, customer_uuid=first.uuid, per_page=2, cursor=page.cursor
    ).get()
    assert [c.email for c in rest.entries] == ["p2@example.com"] and rest.has_more is False


def test_rate_limit_surfaces_at_once_over_http(
    cm: chartmogul.Config, control: httpx.Client
) -> None:
    control.post("/faults", json={"rate_limit": 2})
    chartmogul.Ping.ping(cm).get()
    chartmogul.Ping.ping(cm).get()
    with pytest.raises(chartmogul.APIError) as caught:
        chartmogul.Ping.ping(cm).get()
    assert caught.value.__cause__.response.status_code == 429


def test_wrong_key_is_an_api_error(sandbox_server: object, cm: chartmogul.Config) -> None:
    wrong = chartmogul.Config("not-the-key")
    wrong.uri = cm.uri
    with pytest.raises(chartmogul.APIError) as caught:
        chartmogul.Ping.ping(wrong).get()
    assert caught.value.__cause__.response.status_code == 401


def test_custom_attributes_and_tags_by_email(cm: chartmogul.Config, source: str) -> None:
    _customer(cm, source, "one", email="team@example.com")
    _customer(cm, source, "two", email="team@example.com")
    custom = [{"type": "String", "key": "plan", "value": "pro"}]
    result = chartmogul.CustomAttributes.add_by_email(
        cm, data={"email": "team@example.com", "custom": custom}
    ).get()
    assert [c.attributes.custom for c in result.entries] == [{"plan": "pro"}] * 2
    tagged = chartmogul.Tags.add_by_email(
        cm, data={"email": "team@example.com", "tags": ["vip"]}
    ).get()
    assert [c.attributes.tags for c in tagged.entries] == [["vip"]] * 2


def test_primary_contact_becomes_a_contact(cm: chartmogul.Config, source: str) -> None:
    customer = _customer(
        cm, source, "pc", primary_contact={"first_name": "Anna", "email": "anna@example.com"}
    )
    (contact,) = chartmogul.Customer.contacts(cm, uuid=customer.uuid).get().entries
    assert (contact.first_name, contact.email, contact.position) == (
        "Anna",
        "anna@example.com",
        1,
    )
    chartmogul.Customer.modify(
        cm, uuid=customer.uuid, data={"primary_contact": {"last_name": "Gardner"}}
    ).get()
    (updated,) = chartmogul.Customer.contacts(cm, uuid=customer.uuid).get().entries
    assert (updated.uuid, updated.first_name, updated.last_name) == (
        contact.uuid,
        "Anna",
        "Gardner",
    )


def test_the_official_client_waits_out_retry_after_and_retries(
    cm: chartmogul.Config, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client mounts its retrying adapter on https:// only; mount it on http:// too.
    def retrying_session(retries: int, backoff_factor: float) -> requests.Session:
        session = requests.Session()
        session.mount("http://", retry_request._retry_adapter(3, 0))
        return session

    monkeypatch.setattr(chartmogul.resource, "requests_retry_session", retrying_session)
    control.post("/faults", json={"rate_limit": 1, "retry_after": 1})
    started = time.monotonic()
    assert chartmogul.Ping.ping(cm).get().data == "pong!"
    assert chartmogul.Ping.ping(cm).get().data == "pong!"  # 429, waits 1 s, retried
    assert time.monotonic() - started >= 0.9
    by_status = control.get("/stats").json()["by_endpoint"]["GET /v1/ping"]
    assert by_status["429"] >= 1 and by_status["200"] == 2
