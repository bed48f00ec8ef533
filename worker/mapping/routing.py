"""Which customer an event belongs to, or why it is not delivered (pure; links passed in)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.mapping.model import EventRoute
from worker.mapping.policy import MappingPolicy

# The names a Segment `integrations` object may use for this destination (case-sensitive, as
# Segment treats them): the catalog shows "ChartMogul" and "Chart Mogul".
DESTINATION_NAMES = ("ChartMogul", "Chart Mogul", "ChartMogul (Actions)", "Actions ChartMogul")
DELIVERED_TYPES = ("identify", "group")


def external_id(value: Any) -> str | None:
    """An id as ChartMogul takes it: non-empty text (numbers are spelled out), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def integration_enabled(integrations: Any) -> bool:
    """Segment's rule: an explicit setting for us wins; otherwise "All" (default true) decides."""
    if not isinstance(integrations, Mapping):
        return True
    ours = [integrations[name] for name in DESTINATION_NAMES if name in integrations]
    if any(value is False for value in ours):
        return False
    # An options object ({"ChartMogul": {...}}) enables the destination like `true` does.
    if any(value is True or isinstance(value, Mapping) for value in ours):
        return True
    return integrations.get("All", True) is not False


def traits_of(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event's traits object (empty when absent or malformed)."""
    traits = event.get("traits")
    return traits if isinstance(traits, Mapping) else {}


def identify_email(event: Mapping[str, Any]) -> str | None:
    """The Identify's email trait when it is usable as a key."""
    email = traits_of(event).get("email")
    return email.strip() if isinstance(email, str) and "@" in email else None


def company_id(event: Mapping[str, Any], policy: MappingPolicy) -> str | None:
    """traits.company.id of an Identify, unless the overrides ignore it."""
    company = traits_of(event).get("company")
    if not isinstance(company, Mapping) or policy.identify.ignores("company.id"):
        return None
    return external_id(company.get("id"))


def contact_key(event: Mapping[str, Any]) -> str | None:
    """The contact's external id: the userId, or for an anonymous Identify its email."""
    return external_id(event.get("userId")) or identify_email(event)


def link_subject(event: Mapping[str, Any]) -> str | None:
    """Who a Group call links to its group (and whom an Identify's link is looked up for)."""
    return external_id(event.get("userId")) or external_id(event.get("anonymousId"))


def group_link(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """(user, groupId) that a Group call teaches the engine to remember, if any."""
    if not isinstance(event, Mapping) or event.get("type") != "group":
        return None
    subject, group = link_subject(event), external_id(event.get("groupId"))
    return (subject, group) if subject and group else None


def _route_common(event: Any) -> EventRoute | None:
    """The rules both modes share: malformed, other types, integrations, Group calls."""
    if not isinstance(event, Mapping):
        return EventRoute("skipped", "not a JSON object", None)
    kind = event.get("type")
    if kind not in DELIVERED_TYPES:
        return EventRoute("ignored", f"{kind!s} calls are not sent to ChartMogul", None)
    if not integration_enabled(event.get("integrations")):
        return EventRoute("filtered", "the integrations object disables ChartMogul", None)
    if kind == "group":
        group = external_id(event.get("groupId"))
        if group is None:
            return EventRoute("skipped", "group call without a groupId", None)
        return EventRoute("deliver", "", group)
    return None


def route_event(
    event: Mapping[str, Any], policy: MappingPolicy, linked_group: str | None
) -> EventRoute:
    """Deliver (to which customer), or filtered / skipped / ignored / wait_for_group with why."""
    common = _route_common(event)
    if common is not None:
        return common
    key = contact_key(event)
    if key is None:
        return EventRoute(
            "skipped",
            "identify with only an anonymousId and no email: nothing ChartMogul can key on",
            None,
        )
    company = company_id(event, policy)
    if company:
        return EventRoute("deliver", "", company)
    if linked_group:
        return EventRoute("deliver", "", linked_group)
    if policy.company_creation == "identify":
        return EventRoute("deliver", "", key)
    return EventRoute(
        "wait_for_group",
        "COMPANY_CREATION=group and no Group call has linked this user to a company yet",
        None,
    )


def route_webhook_event(event: Mapping[str, Any]) -> EventRoute:
    """DELIVERY_MODE=webhook: what Segment's destination would post, in order per subject.

    Segment neither holds nor drops events: anonymous Identifies go out, nothing waits for a
    Group call (COMPANY_CREATION does not apply), and the action's own validation decides at
    delivery. The entity is the user of an Identify or the group of a Group call, so the
    events that set the same record keep their arrival order.
    """
    common = _route_common(event)
    if common is not None:
        return common
    subject = link_subject(event)
    if subject is None:
        return EventRoute("skipped", "The user_id and/or anonymous_id must be present.", None)
    return EventRoute("deliver", "", subject)
