"""The last requests the sandbox answered, so a test can see what the relay sent and when."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

DEFAULT_SIZE = 20_000
BODY_CHARS = 20_000


@dataclass(frozen=True)
class LoggedRequest:
    """One answered request (status 0: the connection was reset)."""

    seq: int
    at: float
    method: str
    path: str
    query: str
    status: int
    body: Any

    def as_json(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "seq": self.seq, "at": self.at, "method": self.method, "path": self.path,
            "query": self.query, "status": self.status, "body": self.body,
        }  # fmt: skip


def parsed_body(raw: bytes) -> Any:
    """The body as JSON when it is JSON, else as (cut) text; None when empty."""
    if not raw:
        return None
    text = raw[:BODY_CHARS].decode("utf-8", "replace")
    try:
        return json.loads(raw)
    except ValueError:
        return text


class RequestLog:
    """A bounded, ordered log; `seq` keeps counting across the bound so polls can resume."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.entries: deque[LoggedRequest] = deque(maxlen=size)
        self.next_seq = 1

    def add(self, at: float, request: tuple[str, str, str], status: int, body: bytes) -> None:
        """Record one answered request: (method, path, query), its status and body."""
        method, path, query = request
        entry = LoggedRequest(self.next_seq, at, method, path, query, status, parsed_body(body))
        self.entries.append(entry)
        self.next_seq += 1

    def since(self, seq: int, match: str | None = None) -> list[dict[str, Any]]:
        """Entries after `seq`, optionally only those whose path, query or body has `match`."""
        found = []
        for entry in self.entries:
            if entry.seq <= seq:
                continue
            if match is not None:
                text = f"{entry.path}?{entry.query}\n{json.dumps(entry.body)}"
                if match not in text:
                    continue
            found.append(entry.as_json())
        return found
