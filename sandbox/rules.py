"""Targeted faults: a rule answers matching requests with a status and/or a delay, a number of
times or for a number of seconds; the tests use them to fail one customer, not everyone."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class RuleError(ValueError):
    """A rule that makes no sense."""


@dataclass
class Rule:
    """One targeted fault; `match` is a substring of the path, query or body."""

    match: str | None = None
    method: str | None = None
    status: int | None = None
    times: int | None = None
    until: float | None = None
    latency: float = 0.0
    retry_after: float | None = None
    hits: int = 0

    def live(self, now: float) -> bool:
        """Whether it still applies (times left and its window open)."""
        used_up = self.times is not None and self.hits >= self.times
        return not used_up and (self.until is None or now < self.until)

    def matches(self, method: str, text: str) -> bool:
        """Whether a request with this method and path/query/body text is targeted."""
        return (self.method is None or self.method == method) and (
            self.match is None or self.match in text
        )

    def snapshot(self, now: float) -> dict[str, Any]:
        """As JSON, with what is left of it."""
        return {
            "match": self.match, "method": self.method, "status": self.status,
            "times": self.times, "hits": self.hits, "latency": self.latency,
            "retry_after": self.retry_after,
            "seconds_left": None if self.until is None else round(max(0.0, self.until - now), 3),
        }  # fmt: skip


def parse_rule(raw: object, now: float) -> Rule:
    """A rule from its JSON object; RuleError names what is wrong."""
    if not isinstance(raw, dict):
        raise RuleError("a rule is an object")
    unknown = set(raw) - {"match", "method", "status", "times", "seconds", "latency", "retry_after"}
    if unknown:
        raise RuleError(f"unknown rule fields {sorted(unknown)}")
    method = raw.get("method")
    if method is not None and str(method).upper() not in METHODS:
        raise RuleError(f"method {method!r} is not one of {METHODS}")
    try:
        status = None if raw.get("status") is None else int(raw["status"])
        times = None if raw.get("times") is None else int(raw["times"])
        seconds = None if raw.get("seconds") is None else float(raw["seconds"])
        latency = float(raw.get("latency", 0.0))
        retry_after = None if raw.get("retry_after") is None else float(raw["retry_after"])
    except (TypeError, ValueError):
        raise RuleError(
            "status and times are integers; seconds, latency, retry_after numbers"
        ) from None
    if status is not None and not 400 <= status <= 599:
        raise RuleError(f"status {status} is not a 4xx/5xx")
    if status is None and latency <= 0:
        raise RuleError("a rule needs a status, a latency, or both")
    if latency < 0 or (times is not None and times < 0) or (seconds is not None and seconds < 0):
        raise RuleError("latency, times and seconds must be >= 0")
    match = raw.get("match")
    return Rule(
        match=None if match is None else str(match),
        method=None if method is None else str(method).upper(),
        status=status, times=times, until=None if seconds is None else now + seconds,
        latency=latency, retry_after=retry_after,
    )  # fmt: skip


class Rules:
    """The rule list, replaced as a whole through POST /_sandbox/faults {"rules": [...]}."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []

    def replace(self, raw: object) -> None:
        """Parse and install a new list; all-or-nothing."""
        if not isinstance(raw, list):
            raise RuleError("rules must be a list")
        now = time.monotonic()
        self.rules = [parse_rule(item, now) for item in raw]

    def take(self, method: str, text: str) -> Rule | None:
        """The first live rule targeting this request, counted as hit."""
        now = time.monotonic()
        for rule in self.rules:
            if rule.live(now) and rule.matches(method, text):
                rule.hits += 1
                return rule
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        """Every rule, as JSON."""
        now = time.monotonic()
        return [rule.snapshot(now) for rule in self.rules]
