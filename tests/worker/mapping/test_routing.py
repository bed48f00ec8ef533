"""route_event: which customer an event belongs to, or why it goes nowhere."""

from __future__ import annotations

from typing import Any

import pytest

from worker.mapping.model import EventRoute
from worker.mapping.policy import MappingPolicy
from worker.mapping.routing import group_link, integration_enabled, link_subject, route_event

IDENTIFY = MappingPolicy(company_creation="identify")
GROUP = MappingPolicy(company_creation="group")


def ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "messageId": "m", "timestamp": "2024-01-01T00:00:00Z", **fields}


@pytest.mark.parametrize(
    ("event", "policy", "linked", "outcome", "customer"),
    [
        (ev("group", groupId="g1", userId="u1"), IDENTIFY, None, "deliver", "g1"),
        (ev("group", groupId=42, anonymousId="a"), IDENTIFY, None, "deliver", "42"),
        (ev("group", userId="u1"), IDENTIFY, None, "skipped", None),
        (ev("group", groupId="  ", userId="u1"), IDENTIFY, None, "skipped", None),
        (ev("identify", userId="u1"), IDENTIFY, None, "deliver", "u1"),
        (ev("identify", userId="u1"), IDENTIFY, "g9", "deliver", "g9"),
        (
            ev("identify", userId="u1", traits={"company": {"id": "c1"}}),
            IDENTIFY,
            "g9",
            "deliver",
            "c1",
        ),
        (ev("identify", userId="u1", traits={"company": {"id": 7}}), GROUP, None, "deliver", "7"),
        (
            ev("identify", userId="u1", traits={"company": {"name": "x"}}),
            GROUP,
            None,
            "wait_for_group",
            None,
        ),
        (ev("identify", userId="u1"), GROUP, None, "wait_for_group", None),
        (ev("identify", userId="u1"), GROUP, "g2", "deliver", "g2"),
        (ev("identify", anonymousId="a1"), IDENTIFY, None, "skipped", None),
        (ev("identify", anonymousId="a1", traits={"name": "x"}), IDENTIFY, None, "skipped", None),
        (
            ev("identify", anonymousId="a1", traits={"email": "a@b.co"}),
            IDENTIFY,
            None,
            "deliver",
            "a@b.co",
        ),
        (ev("track", userId="u1", event="Signed Up"), IDENTIFY, None, "ignored", None),
        (ev("page", userId="u1"), IDENTIFY, None, "ignored", None),
        (ev("screen", userId="u1"), IDENTIFY, None, "ignored", None),
        (ev("alias", userId="u1", previousId="p"), IDENTIFY, None, "ignored", None),
        ({"no": "type"}, IDENTIFY, None, "ignored", None),
        (
            ev("identify", userId="u1", integrations={"ChartMogul": False}),
            IDENTIFY,
            None,
            "filtered",
            None,
        ),
        (
            ev("group", groupId="g", integrations={"Chart Mogul": False}),
            IDENTIFY,
            None,
            "filtered",
            None,
        ),
        (
            ev("identify", userId="u1", integrations={"All": False}),
            IDENTIFY,
            None,
            "filtered",
            None,
        ),
        (
            ev("identify", userId="u1", integrations={"All": False, "ChartMogul": True}),
            IDENTIFY,
            None,
            "deliver",
            "u1",
        ),
        (
            ev("identify", userId="u1", integrations={"All": False, "Chart Mogul": {}}),
            IDENTIFY,
            None,
            "deliver",
            "u1",
        ),
        (
            ev("identify", userId="u1", integrations={"All": True, "Salesforce": False}),
            IDENTIFY,
            None,
            "deliver",
            "u1",
        ),
        (
            ev("identify", userId="u1", integrations={"chartmogul": False}),
            IDENTIFY,
            None,
            "deliver",
            "u1",
        ),
    ],
)
def test_route_event(
    event: dict[str, Any],
    policy: MappingPolicy,
    linked: str | None,
    outcome: str,
    customer: str | None,
) -> None:
    route = route_event(event, policy, linked)
    assert (route.outcome, route.customer_external_id) == (outcome, customer)
    assert (route.reason == "") == (outcome == "deliver")


def test_skip_reason_names_the_problem() -> None:
    route = route_event(ev("identify", anonymousId="a1"), IDENTIFY, None)
    assert route == EventRoute(
        "skipped",
        "identify with only an anonymousId and no email: nothing ChartMogul can key on",
        None,
    )


def test_non_object_events_are_skipped_not_raised() -> None:
    assert route_event([1, 2], IDENTIFY, None).outcome == "skipped"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("integrations", "enabled"),
    [(None, True), ("junk", True), ({}, True), ({"All": False}, False), ({"ChartMogul": 0}, True)],
)
def test_integration_enabled_edge_cases(integrations: Any, enabled: bool) -> None:
    assert integration_enabled(integrations) is enabled


def test_group_links_and_link_subjects() -> None:
    assert group_link(ev("group", groupId="g", userId="u")) == ("u", "g")
    assert group_link(ev("group", groupId="g", anonymousId="a")) == ("a", "g")
    assert group_link(ev("group", groupId="g")) is None
    assert group_link(ev("identify", userId="u")) is None
    assert link_subject(ev("identify", userId="u", anonymousId="a")) == "u"
