"""Pure, table-driven mapping of Segment Identify/Group calls to ChartMogul changes (no I/O)."""

from worker.mapping.coerce import coerce
from worker.mapping.merge import clock_time, merge_events
from worker.mapping.model import (
    AttrType,
    ContactFields,
    CustomAttribute,
    CustomerDelta,
    CustomerFields,
    Dropped,
    EventPlan,
    EventRoute,
)
from worker.mapping.plan import plan_event
from worker.mapping.policy import CallOverrides, MappingPolicy, load_mapping_policy
from worker.mapping.routing import group_link, link_subject, route_event, route_webhook_event

__all__ = [
    "AttrType",
    "CallOverrides",
    "ContactFields",
    "CustomAttribute",
    "CustomerDelta",
    "CustomerFields",
    "Dropped",
    "EventPlan",
    "EventRoute",
    "MappingPolicy",
    "clock_time",
    "coerce",
    "group_link",
    "link_subject",
    "load_mapping_policy",
    "merge_events",
    "plan_event",
    "route_event",
    "route_webhook_event",
]
