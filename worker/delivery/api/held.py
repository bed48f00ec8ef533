"""What ChartMogul is known to hold for one customer and its contacts (pure).

Built from ChartMogul's answers, never from what was sent: a value it did not keep is remembered
as `refused`, so it is neither reported as delivered nor sent again while it stays the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from worker.mapping import AttrType, ContactFields, CustomAttribute, CustomerDelta
from worker.mapping.operations import same_value
from worker.mapping.types import infer

FORMAT = 1  # bumped when the stored shape changes; an older record is simply not used


@dataclass
class HeldPart:
    """The confirmed fields of one ChartMogul record, and the values it did not keep."""

    uuid: str
    standard: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    refused: dict[str, Any] = field(default_factory=dict)  # "field" or "custom.key" -> value

    def changed_standard(self, wanted: Mapping[str, Any]) -> dict[str, Any]:
        """The standard fields of `wanted` that ChartMogul does not hold yet."""
        return {k: v for k, v in wanted.items() if self._differs(k, self.standard, k, v)}

    def changed_custom(self, wanted: Mapping[str, Any]) -> dict[str, Any]:
        """The custom values of `wanted` that ChartMogul does not hold yet."""
        return {k: v for k, v in wanted.items() if self._differs(k, self.custom, f"custom.{k}", v)}

    def _differs(self, key: str, held: Mapping[str, Any], refused_key: str, value: Any) -> bool:
        if key in held and same_value(held[key], value):
            return False
        return not (refused_key in self.refused and same_value(self.refused[refused_key], value))

    def absorb(
        self, sent: Mapping[str, Any], sent_custom: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> list[str]:
        """Take in ChartMogul's answer to a write; the names of sent values it did not keep."""
        stored_custom = custom_of(answer)
        # An answer without a standard field, or without any custom map, says nothing about
        # it: the write is taken as kept. A custom map that lacks a key sent is a silent drop.
        writes: list[tuple[str, str, Any, Mapping[str, Any] | None, dict[str, Any]]] = [
            (key, key, value, answer if key in answer else None, self.standard)
            for key, value in sent.items()
        ]
        writes += [
            (f"custom.{key}", key, value, stored_custom, self.custom)
            for key, value in sent_custom.items()
        ]
        lost: list[str] = []
        for name, key, value, stored, held in writes:
            if stored is None or same_value(stored.get(key), value):
                held[key] = value
                self.refused.pop(name, None)
            else:
                if stored.get(key) is None:
                    held.pop(key, None)
                else:
                    held[key] = stored[key]
                self.refused[name] = value
                lost.append(name)
        return lost


@dataclass
class Held:
    """One customer as ChartMogul holds it, with its contacts by external id."""

    customer: HeldPart
    contacts: dict[str, HeldPart] = field(default_factory=dict)
    contact_emails: dict[str, str] = field(default_factory=dict)  # lowercase email -> contact key
    contacts_complete: bool = False  # every contact of the customer is in `contacts`

    def contact_for(self, external_id: str, email: str | None) -> tuple[str, HeldPart] | None:
        """The held contact by external id, else by email (one without an external id)."""
        if external_id in self.contacts:
            return external_id, self.contacts[external_id]
        key = self.contact_emails.get((email or "").lower())
        if key is not None and key.startswith("@"):
            return key, self.contacts[key]
        return None

    def add_contact(self, answer: Mapping[str, Any], standard_fields: Iterable[str]) -> HeldPart:
        """Index a contact from ChartMogul's answer (a listing entry or a create)."""
        part = HeldPart(str(answer["uuid"]))
        part.standard = {k: answer[k] for k in standard_fields if answer.get(k) is not None}
        part.custom = dict(custom_of(answer) or {})
        email = str(answer.get("email") or "").lower()
        key = str(answer.get("external_id") or "") or f"@{email}"
        self.contacts[key] = part
        if email:
            self.contact_emails[email] = key
        return part

    def to_bytes(self) -> bytes:
        """Compact JSON for Redis."""
        return orjson.dumps(
            {
                "v": FORMAT,
                "c": _part_json(self.customer),
                "k": {key: _part_json(p) for key, p in self.contacts.items()},
                "e": self.contact_emails,
                "all": self.contacts_complete,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Held | None:
        """The record, or None when it is unreadable or of another format."""
        try:
            data = orjson.loads(raw)
            if data.get("v") != FORMAT:
                return None
            return cls(
                customer=_part_from(data["c"]),
                contacts={k: _part_from(p) for k, p in data["k"].items()},
                contact_emails=dict(data["e"]),
                contacts_complete=bool(data["all"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None


def view_delta(external_id: str, held: Held, types: Mapping[str, AttrType]) -> CustomerDelta:
    """The relay's view of a customer (what it last had confirmed) as a delta to send again."""

    def attrs(values: Mapping[str, Any]) -> dict[str, CustomAttribute]:
        out: dict[str, CustomAttribute] = {}
        for key, value in values.items():
            inferred = infer(key, value)
            if isinstance(inferred, CustomAttribute):
                out[key] = CustomAttribute(key, types.get(key, inferred.type), inferred.value)
        return out

    contacts = {
        uid: ContactFields(uid, dict(part.standard), attrs(part.custom))
        for uid, part in held.contacts.items()
        if not uid.startswith("@")  # a contact with no external id is not the relay's
    }
    return CustomerDelta(
        external_id=external_id, standard=dict(held.customer.standard),
        custom=attrs(held.customer.custom), contacts=contacts, clock_updates={},
        message_ids=(), dropped=(),
    )  # fmt: skip


def custom_of(answer: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The custom values in a customer or contact answer; None when the answer has none."""
    custom = answer.get("custom")
    if custom is None:
        custom = (answer.get("attributes") or {}).get("custom")
    return custom if isinstance(custom, Mapping) else None


def held_from_customer(answer: Mapping[str, Any], standard_fields: Iterable[str]) -> Held:
    """A record from a customer object ChartMogul returned (a lookup or a create)."""
    part = HeldPart(str(answer["uuid"]))
    part.standard = {k: answer[k] for k in standard_fields if answer.get(k) is not None}
    part.custom = dict(custom_of(answer) or {})
    return Held(part)


def _part_json(part: HeldPart) -> dict[str, Any]:
    return {"u": part.uuid, "s": part.standard, "c": part.custom, "r": part.refused}


def _part_from(data: Mapping[str, Any]) -> HeldPart:
    return HeldPart(str(data["u"]), dict(data["s"]), dict(data["c"]), dict(data["r"]))
