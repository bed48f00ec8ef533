"""Where the workers deliver in a fault run: the ChartMogul sandbox through the real API deliverer,
or (until that is wired) the engine tests' recorder through the recording deliverer.

Both expose the same faults (500 outage, 429 storm, slow answers, connection resets) and the
same final-state check against the events that should have taken effect.
"""

from __future__ import annotations

import socket
import struct
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

import httpx

from sandbox.config import SandboxConfig
from sandbox.runner import SandboxServer
from tests.doubles.recorder import Recorder, Rule
from tests.support.sandbox_process import SandboxProcess

from .stream import Event, newest_by, newest_traits

API_KEY = "faults-api-key"
DATA_SOURCE = "ds_00000000-0000-4000-8000-00000000fa17"


@dataclass
class StateCheck:
    """Final state against the expected one."""

    mismatches: list[str] = field(default_factory=list)
    customers: int = 0
    contacts: int = 0
    duplicate_customers: int = 0
    duplicate_contacts: int = 0


class Target(Protocol):
    name: str

    def worker_env(self) -> dict[str, str]: ...
    def outage(self, seconds: float, mode: str) -> None: ...
    def rate_storm(self) -> None: ...
    def slow(self, latency: float, latency_max: float) -> None: ...
    def clear(self) -> None: ...
    def calls(self) -> Counter[str]: ...
    def check(self, events: list[Event]) -> StateCheck: ...
    def stop(self) -> None: ...


def real_deliverer_available() -> bool:
    """True once worker/delivery.py builds an API deliverer itself (the integrate step)."""
    from cmrelay.errors import ConfigurationError
    from cmrelay.settings import Secret, Settings
    from worker.delivery.loader import _builtin_deliverer

    settings = Settings(
        chartmogul_api_key=Secret("k"), chartmogul_data_source_uuid=DATA_SOURCE,
        chartmogul_api_base="http://127.0.0.1:9/v1",
    )  # fmt: skip
    try:
        _builtin_deliverer(settings, None).close()  # type: ignore[arg-type]
    except ConfigurationError as exc:
        return "no built-in deliverer" not in str(exc)
    except Exception:
        return True
    return True


class SandboxTarget:
    """The sandbox with ChartMogul's limits on (40 req/s, 20 in flight)."""

    name = "sandbox"

    def __init__(self, latency: float = 0.0, *, own_process: bool = False) -> None:
        self.server: SandboxServer | SandboxProcess
        if own_process:  # away from the driver's GIL, as ChartMogul is (the 429-counting benches)
            self.server = SandboxProcess(api_key=API_KEY, data_source=DATA_SOURCE, latency=latency)
        else:
            config = SandboxConfig(api_key=API_KEY, data_source_uuid=DATA_SOURCE, latency=latency)
            self.server = SandboxServer(config).start()
        self.control = httpx.Client(base_url=self.server.control_url, timeout=30)

    def worker_env(self) -> dict[str, str]:
        return {
            "DELIVERY_MODE": "api",
            "CHARTMOGUL_API_BASE": self.server.base_url,
            "CHARTMOGUL_API_KEY": API_KEY,
            "CHARTMOGUL_DATA_SOURCE_UUID": DATA_SOURCE,
        }

    def _faults(self, **changes: Any) -> None:
        self.control.post("/faults", json=changes).raise_for_status()

    def outage(self, seconds: float, mode: str) -> None:
        self._faults(outage={"seconds": seconds, "mode": mode})

    def rate_storm(self) -> None:
        # Every API call answers 429 (Retry-After: 1) until clear().
        self._faults(error_rates={"429": 1.0}, retry_after=1)

    def slow(self, latency: float, latency_max: float) -> None:
        self._faults(latency=latency, latency_max=latency_max)

    def clear(self) -> None:
        self._faults(error_rates={}, latency=0, latency_max=None)

    def calls(self) -> Counter[str]:
        stats = self.control.get("/stats").json()
        return Counter({str(k): int(v) for k, v in stats["by_status"].items()})

    def check(self, events: list[Event]) -> StateCheck:
        state = self.control.get("/state").json()
        out = StateCheck()
        customers = Counter(c["external_id"] for c in state["customers"])
        contacts = Counter(c["external_id"] for c in state["contacts"])
        out.customers, out.contacts = len(customers), len(contacts)
        out.duplicate_customers = sum(n - 1 for n in customers.values())
        out.duplicate_contacts = sum(n - 1 for n in contacts.values())
        by_ext = {c["external_id"]: c for c in state["customers"]}
        for gid, event in newest_by(events, "group", "groupId").items():
            got = by_ext.get(gid)
            want = {"name": event["traits"]["name"], "plan": event["traits"]["plan"],
                    "seats": event["traits"]["seats"]}  # fmt: skip
            have = got and {"name": got.get("name"), **_pick(got["attributes"]["custom"], want)}
            if have != want:
                out.mismatches.append(f"customer {gid}: want {want}, have {have}")
        contact_by_ext = {c["external_id"]: c for c in state["contacts"]}
        for uid, event in newest_by(events, "identify", "userId").items():
            got = contact_by_ext.get(uid)
            want = {"first_name": event["traits"]["firstName"], "email": f"{uid}@example.com",
                    "customer_external_id": event["traits"]["company"]["id"]}  # fmt: skip
            have = got and {k: got.get(k) for k in want}
            if have != want:
                out.mismatches.append(f"contact {uid}: want {want}, have {have}")
        return out

    def stop(self) -> None:
        self.control.close()
        self.server.stop()


def _pick(custom: Mapping[str, Any], want: Mapping[str, Any]) -> dict[str, Any]:
    return {k: custom.get(k) for k in want if k != "name"}


class FaultyRecorder(Recorder):
    """The engine tests' recorder plus a connection-reset mode (RST instead of an answer)."""

    def __init__(self) -> None:
        super().__init__()
        self.reset_until = 0.0
        self.resets = 0

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        if time.monotonic() < self.reset_until:
            self.resets += 1
            sock: socket.socket = handler.connection
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.close_connection = True
            sock.close()
            return
        super()._serve(handler)


class RecorderTarget:
    """The recording deliverer against FaultyRecorder: one record per customer entity."""

    name = "recorder"

    def __init__(self, latency: float = 0.0) -> None:
        self.recorder = FaultyRecorder().start()
        self.latency = latency
        self._entities: list[str] = []

    def worker_env(self) -> dict[str, str]:
        return {
            "CMRELAY_DELIVERER": "tests.doubles.recording_deliverer:build",
            "CHARTMOGUL_WEBHOOK_URL": self.recorder.url,
        }

    def expect(self, events: list[Event]) -> None:
        """Learn the entities (the recorder's latency is per entity)."""
        self._entities = sorted({f"customer:{c}" for c in newest_traits(events)})
        for entity in self._entities:
            self.recorder.latency[entity] = self.latency

    def outage(self, seconds: float, mode: str) -> None:
        if mode == "reset":
            self.recorder.reset_until = time.monotonic() + seconds
        else:
            self.recorder.fail(int(mode), until=time.monotonic() + seconds)

    def rate_storm(self) -> None:
        rule = Rule(429, headers={"Retry-After": "1"})
        with self.recorder.lock:
            self.recorder.rules.append(rule)

    def slow(self, latency: float, latency_max: float) -> None:
        for entity in self._entities:
            self.recorder.latency[entity] = (latency + latency_max) / 2

    def clear(self) -> None:
        self.recorder.reset()
        for entity in self._entities:
            self.recorder.latency[entity] = self.latency

    def calls(self) -> Counter[str]:
        counts = Counter(str(c.status) for c in self.recorder.iter_calls())
        counts["reset"] += self.recorder.resets
        return counts

    def check(self, events: list[Event]) -> StateCheck:
        out = StateCheck()
        with self.recorder.lock:
            entities = {k: dict(v) for k, v in self.recorder.entities.items()}
            creates = Counter(self.recorder.creates)
            refused = sum(1 for c in self.recorder.calls if c.method == "POST" and c.status == 409)
        out.customers = len(entities)
        out.duplicate_customers = sum(n - 1 for n in creates.values()) + refused
        for cid, want in newest_traits(events).items():
            have = entities.get(f"customer:{cid}")
            if have != want:
                out.mismatches.append(f"customer:{cid}: want {want}, have {have}")
        return out

    def stop(self) -> None:
        self.recorder.stop()
