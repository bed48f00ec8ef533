"""The values mapping produces: what one event (or a coalesced batch) says about ChartMogul."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

AttrType = Literal["String", "Integer", "Decimal", "Timestamp", "Boolean"]
ATTR_TYPES: tuple[AttrType, ...] = ("String", "Integer", "Decimal", "Timestamp", "Boolean")

Outcome = Literal["deliver", "filtered", "skipped", "ignored", "wait_for_group"]


@dataclass(frozen=True)
class CustomAttribute:
    """One custom attribute: key sanitised to [A-Za-z0-9_], value JSON-ready."""

    key: str
    type: AttrType
    value: Any  # Timestamp values are ISO-8601 strings


@dataclass(frozen=True)
class CustomerFields:
    """What one event says about a customer."""

    external_id: str
    standard: Mapping[str, Any] = field(default_factory=dict)
    custom: Mapping[str, CustomAttribute] = field(default_factory=dict)


@dataclass(frozen=True)
class ContactFields:
    """What one event says about a contact (external id = the Segment userId)."""

    external_id: str
    standard: Mapping[str, Any] = field(default_factory=dict)
    custom: Mapping[str, CustomAttribute] = field(default_factory=dict)


@dataclass(frozen=True)
class Dropped:
    """An attribute left out, with why (counted and logged, never fatal)."""

    field: str
    reason: str


@dataclass(frozen=True)
class EventRoute:
    """The routing decision for one event."""

    outcome: Outcome
    reason: str  # "" when deliver
    customer_external_id: str | None


@dataclass(frozen=True)
class EventPlan:
    """What one event would change."""

    customer: CustomerFields | None  # None: the event sets nothing on the customer itself
    contact: ContactFields | None
    dropped: tuple[Dropped, ...] = ()


@dataclass(frozen=True)
class CustomerDelta:
    """The net change for one customer entity after merging its events (last writer wins)."""

    external_id: str
    standard: Mapping[str, Any]
    custom: Mapping[str, CustomAttribute]
    contacts: Mapping[str, ContactFields]  # by contact external id (userId)
    clock_updates: Mapping[str, str]  # attribute path -> timestamp of the value now set
    message_ids: tuple[str, ...]
    dropped: tuple[Dropped, ...]

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to send (all values stale and no contact touched)."""
        return not (self.standard or self.custom or self.contacts)
