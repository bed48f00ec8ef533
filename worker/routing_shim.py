"""A minimal event router until worker.mapping.route_event lands (the lead swaps it in).

Same contract as INTERFACES.md: one event -> EventRoute naming its customer entity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["deliver", "filtered", "skipped", "ignored", "wait_for_group"]


@dataclass(frozen=True)
class EventRoute:
    """Routing decision for one event."""

    outcome: Outcome
    reason: str
    customer_external_id: str | None


def _text(value: Any) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None


def route_event(  # noqa: PLR0911 - one early return per routing rule reads best
    event: Mapping[str, Any], company_creation: str, linked_group: str | None
) -> EventRoute:
    """Group -> groupId; Identify -> traits.company.id, the linked group, or per policy."""
    kind = event.get("type")
    if kind == "group":
        group_id = _text(event.get("groupId"))
        if group_id is None:
            return EventRoute("skipped", "no_group_id", None)
        return EventRoute("deliver", "", group_id)
    if kind != "identify":
        return EventRoute("ignored", f"type_{kind}", None)
    traits = event.get("traits")
    company = traits.get("company") if isinstance(traits, Mapping) else None
    company_id = _text(company.get("id")) if isinstance(company, Mapping) else None
    if company_id is not None:
        return EventRoute("deliver", "", company_id)
    if linked_group is not None:
        return EventRoute("deliver", "", linked_group)
    user_id = _text(event.get("userId"))
    if user_id is None:
        return EventRoute("skipped", "no_user_id", None)
    if company_creation == "group":
        return EventRoute("wait_for_group", "", None)
    return EventRoute("deliver", "", user_id)
