"""Payloads shared by several test modules."""

from __future__ import annotations

# The bodies Segment's own tests expect the ChartMogul (Actions) destination to POST
# (segment.md §1.6): what /chartmogul receives.
ACTIONS_CUSTOMER = {
    "type": "Send Customer",
    "message_id": "1",
    "timestamp": "2024-01-01T10:00:00Z",
    "sent_at": "2024-01-01T10:01:00Z",
    "group_id": "g1",
    "user_id": "u1",
    "name": "Soft Tech",
}
ACTIONS_CONTACT = {
    "type": "Send Contact",
    "message_id": "1",
    "timestamp": "2024-01-01T10:00:00Z",
    "sent_at": "2024-01-01T10:01:00Z",
    "user_id": "u1",
    "anonymous_id": "a1",
}
