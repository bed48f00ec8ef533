"""Known event streams for the fault suite and the benchmarks, and the state they must produce.

Pure: no I/O. Every event gets a unique, increasing Segment timestamp, so "the newest event per
attribute" is always well defined; the send order is then disturbed (late events) and some
events are sent twice (same messageId), like retries from a real Segment source.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Event = dict[str, Any]


@dataclass(frozen=True)
class Mix:
    """Shape of a trace: how many companies and users, and how often each is touched."""

    customers: int = 40
    users_per_customer: int = 2
    events: int = 600
    group_share: float = 0.4  # the rest are Identify calls of the customer's users
    duplicate_share: float = 0.1  # extra copies (same messageId) sent later
    disorder_share: float = 0.2  # events swapped with a later one (arrive late)
    seed: int = 7
    prefix: str = "f"

    @classmethod
    def parse(cls, text: str, **defaults: Any) -> Mix:
        """`customers=100,users_per_customer=3,group_share=0.3` -> Mix (the bench CLI)."""
        values: dict[str, Any] = dict(defaults)
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, raw = part.partition("=")
            kind = type(getattr(cls(), name))
            values[name] = kind(raw)
        return cls(**values)


@dataclass
class Stream:
    """Events in send order (with copies), and the unique events by messageId."""

    sent: list[Event]
    unique: dict[str, Event] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return len(self.sent) - len(self.unique)


def _stamp(base: datetime, n: int) -> str:
    return (
        (base + timedelta(milliseconds=n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def group_event(prefix: str, gid: str, n: int, ts: str) -> Event:
    """A Group call (by the company's admin user) updating its name and two custom attributes."""
    return {
        "type": "group", "messageId": f"{prefix}-m{n}", "groupId": gid, "userId": f"{gid}-admin",
        "timestamp": ts,
        "traits": {"name": f"Company {gid} v{n}", "plan": f"plan{n % 7}", "seats": n},
    }  # fmt: skip


def identify_event(prefix: str, uid: str, gid: str, n: int, ts: str) -> Event:
    """An Identify of a user of the company (traits.company.id names the customer)."""
    return {
        "type": "identify", "messageId": f"{prefix}-m{n}", "userId": uid, "timestamp": ts,
        "traits": {"email": f"{uid}@example.com", "firstName": f"F{n}", "logins": n,
                   "company": {"id": gid}},
    }  # fmt: skip


def generate(mix: Mix) -> Stream:
    """A reproducible stream following `mix`."""
    rng = random.Random(mix.seed)
    base = datetime.now(UTC) - timedelta(hours=1)
    events: list[Event] = []
    for n in range(mix.events):
        c = n if n < mix.customers else rng.randrange(mix.customers)
        gid = f"{mix.prefix}-c{c}"
        ts = _stamp(base, n)
        if n < mix.customers or rng.random() < mix.group_share:
            event = group_event(mix.prefix, gid, n, ts)
        else:
            uid = f"{mix.prefix}-u{c}-{rng.randrange(mix.users_per_customer)}"
            event = identify_event(mix.prefix, uid, gid, n, ts)
        events.append(event)
    unique = {e["messageId"]: e for e in events}
    for _ in range(int(len(events) * mix.disorder_share)):
        i = rng.randrange(len(events))
        j = min(len(events) - 1, i + rng.randrange(1, 60))
        events[i], events[j] = events[j], events[i]
    for _ in range(int(len(unique) * mix.duplicate_share)):
        i = rng.randrange(len(events))
        events.insert(min(len(events), i + rng.randrange(1, 200)), events[i])
    return Stream(events, unique)


def all_new(count: int, prefix: str = "n") -> Stream:
    """Every event a Group call for a customer never seen before."""
    base = datetime.now(UTC) - timedelta(hours=1)
    events: list[Event] = []
    for n in range(count):
        events.append(group_event(prefix, f"{prefix}-c{n}", n, _stamp(base, n)))
    return Stream(events, {e["messageId"]: e for e in events})


def customer_of(event: Mapping[str, Any]) -> str:
    """The customer external id the event belongs to (the relay's routing rule)."""
    if event["type"] == "group":
        return str(event["groupId"])
    return str(event["traits"]["company"]["id"])


def newest_traits(events: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """customer -> trait -> value of the newest event carrying it (the recorder's view)."""
    out: dict[str, dict[str, tuple[str, Any]]] = {}
    for event in events:
        attrs = out.setdefault(customer_of(event), {})
        for key, value in event["traits"].items():
            if key not in attrs or event["timestamp"] > attrs[key][0]:
                attrs[key] = (event["timestamp"], value)
    return {c: {k: v for k, (_, v) in attrs.items()} for c, attrs in out.items()}


def newest_by(events: Iterable[Mapping[str, Any]], kind: str, key: str) -> dict[str, Event]:
    """The newest event of `kind` per value of `key` (groupId or userId)."""
    out: dict[str, Event] = {}
    for event in events:
        if event["type"] == kind:
            current = out.get(event[key])
            if current is None or event["timestamp"] > current["timestamp"]:
                out[str(event[key])] = dict(event)
    return out
