"""The confirmed-state record: what differs, what ChartMogul did not keep, its Redis form."""

from __future__ import annotations

from worker.delivery.api.held import Held, HeldPart, held_from_customer
from worker.mapping.traits import CONTACT_FIELDS, CUSTOMER_FIELDS


def test_only_values_chartmogul_does_not_hold_count_as_changed() -> None:
    part = HeldPart("cus_1", standard={"name": "Acme", "country": "DE"}, custom={"seats": 3})
    assert part.changed_standard({"name": "Acme", "country": "FR"}) == {"country": "FR"}
    assert part.changed_custom({"seats": 3.0, "plan": "pro"}) == {"plan": "pro"}  # 3 == 3.0
    assert part.changed_custom({"seats": True}) == {"seats": True}  # a bool is not 1


def test_a_value_chartmogul_did_not_keep_is_reported_once_and_not_sent_again() -> None:
    part = HeldPart("cus_1")
    answer = {"uuid": "cus_1", "state": None, "country": "DE", "attributes": {"custom": {}}}
    lost = part.absorb({"state": "NY", "country": "DE"}, {"fb": "x"}, answer)
    assert lost == ["state", "custom.fb"]
    assert part.changed_standard({"state": "NY"}) == {}  # the same refused value: not re-sent
    assert part.changed_standard({"state": "CA"}) == {"state": "CA"}  # a new value is tried
    assert part.changed_custom({"fb": "x"}) == {}
    kept = part.absorb({}, {"fb": "y"}, {"custom": {"fb": "y"}})
    assert kept == [] and "custom.fb" not in part.refused and part.custom["fb"] == "y"


def test_an_answer_without_a_field_says_nothing_and_the_write_is_taken_as_kept() -> None:
    part = HeldPart("cus_1")
    assert part.absorb({"website_url": "https://a.test"}, {"k": 1}, {"uuid": "cus_1"}) == []
    assert part.standard == {"website_url": "https://a.test"} and part.custom == {"k": 1}


def test_contacts_match_by_external_id_then_by_email_of_one_without_an_id() -> None:
    held = held_from_customer({"uuid": "cus_1", "name": "A", "attributes": {}}, CUSTOMER_FIELDS)
    held.add_contact({"uuid": "con_1", "external_id": "u1", "email": "a@x.test"}, CONTACT_FIELDS)
    held.add_contact({"uuid": "con_2", "external_id": None, "email": "B@x.test"}, CONTACT_FIELDS)
    assert held.contact_for("u1", None) == ("u1", held.contacts["u1"])
    assert held.contact_for("u2", "b@x.test") == ("@b@x.test", held.contacts["@b@x.test"])
    assert held.contact_for("u3", "a@x.test") is None  # that email belongs to another user id


def test_the_record_round_trips_through_bytes_and_refuses_other_formats() -> None:
    held = Held(HeldPart("cus_1", {"name": "A"}, {"k": 1}, {"state": "NY"}), contacts_complete=True)
    held.add_contact({"uuid": "con_1", "external_id": "u1", "email": "a@x.test"}, CONTACT_FIELDS)
    again = Held.from_bytes(held.to_bytes())
    assert again == held
    assert Held.from_bytes(b'{"v": 0}') is None and Held.from_bytes(b"not json") is None
    assert len(held.to_bytes()) < 200  # compact: Redis memory per customer stays small
