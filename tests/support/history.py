"""Realistic Segment history files for the backfill tests and the benchmark.

What a workspace's archive looks like: Identify calls repeated with the same traits (page loads),
Group calls linking users to companies, late events (a timestamp older than lines before them),
events without a messageId, Track calls the relay ignores, and a few bad lines. Files are
written plain and gzip-compressed; `History` says what a correct reader must find.
"""

from __future__ import annotations

import gzip
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

START = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class History:
    """What was written: the files and what a reader must count."""

    files: list[Path] = field(default_factory=list)
    valid: int = 0  # identify + group events the ingest would queue
    ignored: int = 0  # track calls
    bad: list[tuple[str, int]] = field(default_factory=list)  # (file name, line) of bad lines
    message_ids: set[str] = field(default_factory=set)  # given ids of the valid events
    without_id: int = 0  # valid events that carry no messageId


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_BAD_LINES: tuple[bytes, ...] = (
    b"{not json",
    b'{"type": "group", "userId": "u-x", "timestamp": "2024-01-01T00:00:00Z"}',  # no groupId
    b'{"type": "identify", "traits": {}, "timestamp": "2024-01-01T00:00:00Z"}',  # no user
    b'{"type": "identify", "userId": "u-y"}',  # no time of its own
    b'"just a string"',
)


def write_history(
    directory: Path,
    *,
    files: int = 3,
    events_per_file: int = 60,
    users: int = 12,
    companies: int = 4,
    bad_every: int = 17,
    seed: int = 7,
    gzip_files: str = "odd",
    record_ids: bool = True,
    stable_groups: bool = False,
) -> History:
    """Write `files` history files named in time order (`gzip_files`: "odd" compresses every
    other one, "all" or "none"); return what a reader must find. Deterministic for a seed.
    Lines are streamed to disk, so a file of millions of events costs no memory; without
    `record_ids` the given messageIds are not kept either. With `stable_groups` a user always
    joins the same company (u-N: acme-(N mod companies)), so the final state does not depend
    on the order in which concurrent workers learn the links."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    history = History()
    moment = START
    bad_index = 0
    for number in range(files):
        gz = gzip_files == "all" or (gzip_files == "odd" and number % 2 == 1)
        name = f"2024-01-{number + 1:02d}.ndjson" + (".gz" if gz else "")
        path = directory / name
        opener = gzip.open if gz else open
        with opener(path, "wb") as out:
            for index in range(events_per_file):
                if index % bad_every == bad_every - 1:
                    out.write(_BAD_LINES[bad_index % len(_BAD_LINES)] + b"\n")
                    bad_index += 1
                    history.bad.append((name, index + 1))
                    continue
                moment += timedelta(minutes=rng.randint(1, 90))
                when = moment - timedelta(days=2) if rng.random() < 0.1 else moment  # late
                event = _event(rng, users, companies, when, stable_groups)
                if event["type"] == "track":
                    history.ignored += 1
                else:
                    history.valid += 1
                    if "messageId" not in event:
                        history.without_id += 1
                    elif record_ids:
                        history.message_ids.add(event["messageId"])
                out.write(orjson.dumps(event) + b"\n")
        history.files.append(path)
    return history


def _event(
    rng: random.Random, users: int, companies: int, when: datetime, stable: bool = False
) -> dict[str, Any]:
    user = f"u-{rng.randrange(users)}"
    roll = rng.random()
    event: dict[str, Any]
    if roll < 0.55:  # identify, often a repeat with the same traits
        event = {"type": "identify", "userId": user,
                 "traits": {"email": f"{user}@example.com", "name": f"User {user}",
                            "plan": rng.choice(["free", "pro"])}}  # fmt: skip
    elif roll < 0.85:
        group = f"acme-{rng.randrange(companies)}"  # drawn either way: the same stream
        if stable:
            group = f"acme-{int(user[2:]) % companies}"
        event = {"type": "group", "userId": user, "groupId": group,
                 "traits": {"name": group.title(), "employees": rng.randint(1, 500)}}  # fmt: skip
    else:
        event = {"type": "track", "userId": user, "event": "Page Viewed"}
    event["timestamp"] = _stamp(when)
    event["receivedAt"] = _stamp(when + timedelta(seconds=1))
    if rng.random() < 0.8:  # archives carry Segment's messageId; some exports drop it
        event["messageId"] = f"msg-{uuid.UUID(int=rng.getrandbits(128))}"
    return event
