"""Traces shaped like real workspaces, for bench/delivery.py (pure, reproducible).

A trace is a list of phases sent one after another, each settled before the next; only the
measured phases count. Inside a phase the events of one customer are spread out (shuffled), so
a steady pace does not hand the relay a backlog to coalesce.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Event = dict[str, Any]


@dataclass
class Phase:
    """Events sent together; `measured` ones count in the table."""

    name: str
    events: list[Event]
    measured: bool = True
    cold: bool = False  # forget everything the relay holds before this phase (a fresh install)
    backlog: bool = False  # sent as fast as the ingest takes it: the limiter's share of 40/s


@dataclass
class Trace:
    """A named list of phases."""

    name: str
    phases: list[Phase] = field(default_factory=list)

    @property
    def measured(self) -> list[Event]:
        """Every event of the measured phases."""
        return [e for p in self.phases if p.measured for e in p.events]


class _Clock:
    """Unique, increasing Segment timestamps and message ids."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.base = datetime.now(UTC) - timedelta(hours=2)
        self.n = 0

    def next(self) -> tuple[str, str]:
        self.n += 1
        stamp = self.base + timedelta(milliseconds=self.n)
        return f"{self.prefix}-m{self.n}", stamp.isoformat(timespec="milliseconds")


def group(clock: _Clock, gid: str, plan: str, seats: int) -> Event:
    """A Group call: the customer's name and two custom attributes."""
    mid, ts = clock.next()
    return {"type": "group", "messageId": mid, "timestamp": ts, "groupId": gid,
            "userId": f"{gid}-admin",
            "traits": {"name": f"Company {gid}", "plan": plan, "seats": seats}}  # fmt: skip


def identify(clock: _Clock, uid: str, gid: str, logins: int) -> Event:
    """An Identify of a user of the company: a contact with one custom field."""
    mid, ts = clock.next()
    return {"type": "identify", "messageId": mid, "timestamp": ts, "userId": uid,
            "traits": {"email": f"{uid}@example.com", "firstName": f"F{uid}", "logins": logins,
                       "company": {"id": gid}}}  # fmt: skip


def _company(clock: _Clock, prefix: str, c: int, users: int) -> list[Event]:
    gid = f"{prefix}-c{c}"
    return [group(clock, gid, "basic", 1)] + [
        identify(clock, f"{gid}-u{u}", gid, 1) for u in range(users)
    ]


def _shuffled(events: list[Event], seed: int) -> list[Event]:
    out = list(events)
    random.Random(seed).shuffle(out)
    return out


def backlog(customers: int, prefix: str = "blg") -> Trace:
    """New customers queued as fast as the ingest takes them: how much of 40 req/s is used."""
    clock = _Clock(prefix)
    events = [group(clock, f"{prefix}-c{c}", "basic", 1) for c in range(customers)]
    return Trace("backlog", [Phase("queued at once", events, backlog=True)])


def repeats(customers: int, users: int, rounds: int = 3, prefix: str = "rep") -> Trace:
    """Creation, then `rounds` rounds that repeat exactly what ChartMogul holds."""
    clock = _Clock(prefix)
    trace = Trace("repeats")
    first = [e for c in range(customers) for e in _company(clock, prefix, c, users)]
    trace.phases.append(Phase("creation", _shuffled(first, 1)))
    for r in range(rounds):
        again = [e for c in range(customers) for e in _company(clock, prefix, c, users)]
        trace.phases.append(Phase(f"unchanged round {r + 1}", _shuffled(again, 2 + r)))
    return trace


def all_new(customers: int, prefix: str = "new") -> Trace:
    """A Group call for each customer never seen before."""
    clock = _Clock(prefix)
    events = [group(clock, f"{prefix}-c{c}", "basic", 1) for c in range(customers)]
    return Trace("all-new", [Phase("new customers", events)])


def new_contacts(customers: int, prefix: str = "nc") -> Trace:
    """Known customers, then one new user on each."""
    clock = _Clock(prefix)
    known = [group(clock, f"{prefix}-c{c}", "basic", 1) for c in range(customers)]
    users = [identify(clock, f"{prefix}-c{c}-u0", f"{prefix}-c{c}", 1) for c in range(customers)]
    return Trace("new-contacts", [Phase("known customers", known, measured=False),
                                  Phase("a new contact each", _shuffled(users, 3))])  # fmt: skip


def migration(customers: int, users: int, prefix: str = "mig") -> Trace:
    """Every customer already in ChartMogul and the relay cold (installed after ChartMogul's
    own Segment source, or its Redis lost): the same records arrive again."""
    clock = _Clock(prefix)
    seed = [e for c in range(customers) for e in _company(clock, prefix, c, users)]
    again = [e for c in range(customers) for e in _company(clock, prefix, c, users)]
    return Trace("migration", [Phase("already in ChartMogul", seed, measured=False),
                               Phase("relay cold", _shuffled(again, 4), cold=True)])  # fmt: skip


def realistic(customers: int, users: int, events: int, seed: int = 11, prefix: str = "real"
              ) -> Trace:  # fmt: skip
    """A workspace's day: every company and user created once, then mostly unchanged repeats
    (page loads re-identify), some changes (plan, seats, logins) and a few newcomers."""
    rng = random.Random(seed)
    clock = _Clock(prefix)
    state: dict[str, dict[str, Any]] = {}  # gid -> plan, seats, users {uid: logins}
    out: list[Event] = []

    def new_company() -> None:
        gid = f"{prefix}-c{len(state)}"
        state[gid] = {"plan": "basic", "seats": 1, "users": {}}
        out.append(group(clock, gid, "basic", 1))
        for _ in range(users):
            new_user(gid)

    def new_user(gid: str) -> None:
        uid = f"{gid}-u{len(state[gid]['users'])}"
        state[gid]["users"][uid] = 1
        out.append(identify(clock, uid, gid, 1))

    for _ in range(customers):
        new_company()
    while len(out) < events:
        gid = rng.choice(list(state))
        company = state[gid]
        roll = rng.random()
        if roll < 0.02:
            new_company()
        elif roll < 0.05:
            new_user(gid)
        elif roll < 0.15:  # a change: a user logged in again, or the plan or seats moved
            if rng.random() < 0.5:
                uid = rng.choice(list(company["users"]))
                company["users"][uid] += 1
                out.append(identify(clock, uid, gid, company["users"][uid]))
            else:
                company["seats"] += 1
                out.append(group(clock, gid, company["plan"], company["seats"]))
        elif rng.random() < 0.7:  # an unchanged re-identify (a page load)
            uid = rng.choice(list(company["users"]))
            out.append(identify(clock, uid, gid, company["users"][uid]))
        else:  # an unchanged group call
            out.append(group(clock, gid, company["plan"], company["seats"]))
    return Trace("realistic", [Phase("a day", out[:events])])
