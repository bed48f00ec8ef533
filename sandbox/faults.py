"""Injected faults (latency, error rates, outage windows) and the request counters."""

from __future__ import annotations

import random
import time
from collections import Counter
from http import HTTPStatus
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.rules import RuleError, Rules

OUTAGE_MODES = ("500", "reset")


class FaultError(ValueError):
    """A fault setting that makes no sense."""


FAULT_ERRORS = (FaultError, RuleError)


def _rate(status: object, rate: object) -> tuple[int, float]:
    try:
        code = int(str(status))
        value = float(rate)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FaultError(f"error rate {status!r}: {rate!r} is not status: probability") from None
    if not 400 <= code <= 599 or not 0.0 <= value <= 1.0:
        raise FaultError(f"error rate {code}: {value} needs a 4xx/5xx status and 0..1")
    return code, value


class Faults:
    """What goes wrong on purpose; changed at run time through POST /_sandbox/faults."""

    def __init__(self, config: SandboxConfig) -> None:
        self.latency = config.latency
        self.latency_max = config.latency_max
        self.error_rates = dict(_rate(k, v) for k, v in config.error_rates.items())
        self.retry_after: float | None = None
        self.outage_until = 0.0
        self.outage_mode = "500"
        self.rules = Rules()
        self._random = random.Random(config.seed)

    def delay(self) -> float:
        """Seconds to hold this request."""
        if self.latency_max is not None and self.latency_max > self.latency:
            return self._random.uniform(self.latency, self.latency_max)
        return self.latency

    def outage(self) -> str | None:
        """The outage mode while an outage window is open, else None."""
        return self.outage_mode if time.monotonic() < self.outage_until else None

    def pick_error(self) -> int | None:
        """An injected status for this request, or None to serve it normally."""
        roll = self._random.random()
        for status, rate in sorted(self.error_rates.items()):
            if roll < rate:
                return status
            roll -= rate
        return None

    def update(self, body: dict[str, Any]) -> None:
        """Apply a partial settings object; all-or-nothing on a bad value."""
        latency = float(body.get("latency", self.latency))
        latency_max = body.get("latency_max", self.latency_max)
        latency_max = None if latency_max is None else float(latency_max)
        rates = body.get("error_rates", self.error_rates)
        if not isinstance(rates, dict):
            raise FaultError("error_rates must be an object of status: probability")
        parsed = dict(_rate(k, v) for k, v in rates.items())
        if sum(parsed.values()) > 1.0 + 1e-9:
            raise FaultError("error rates add up to more than 1")
        outage = body.get("outage")
        if outage is not None:
            if not isinstance(outage, dict) or outage.get("mode", "500") not in OUTAGE_MODES:
                raise FaultError('outage must be {"seconds": s, "mode": "500" | "reset"}')
            seconds = float(outage.get("seconds", 0))
        retry_after = body.get("retry_after", self.retry_after)
        rules = Rules()
        if "rules" in body:
            rules.replace(body["rules"])
        if latency < 0 or (latency_max is not None and latency_max < 0):
            raise FaultError("latency must be >= 0")
        self.latency, self.latency_max, self.error_rates = latency, latency_max, parsed
        self.retry_after = None if retry_after is None else float(retry_after)
        if outage is not None:
            self.outage_mode = str(outage.get("mode", "500"))
            self.outage_until = time.monotonic() + seconds
        if "rules" in body:
            self.rules = rules

    def snapshot(self) -> dict[str, Any]:
        """The current settings, as JSON."""
        left = max(0.0, self.outage_until - time.monotonic())
        return {
            "latency": self.latency,
            "latency_max": self.latency_max,
            "error_rates": {str(k): v for k, v in self.error_rates.items()},
            "retry_after": self.retry_after,
            "outage": {"mode": self.outage_mode, "seconds_left": round(left, 3)},
            "rules": self.rules.snapshot(),
        }


def plain_error(status: int) -> bytes:
    """The text/plain body ChartMogul's edge sends for a 5xx, e.g. "500 Internal Server Error"."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return f"{status} {phrase}".encode()


class Stats:
    """Requests counted by endpoint (method and route template) and status."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()

    def record(self, endpoint: str, status: int) -> None:
        """Count one answered request."""
        self.counts[(endpoint, status)] += 1

    def snapshot(self) -> dict[str, Any]:
        """Totals, by status and by endpoint, as JSON."""
        by_endpoint: dict[str, dict[str, int]] = {}
        by_status: Counter[str] = Counter()
        for (endpoint, status), count in sorted(self.counts.items()):
            name = str(status) if status else "reset"  # 0: the connection was reset
            by_endpoint.setdefault(endpoint, {})[name] = count
            by_status[name] += count
        return {
            "total": sum(self.counts.values()),
            "by_status": dict(by_status),
            "by_endpoint": by_endpoint,
        }
