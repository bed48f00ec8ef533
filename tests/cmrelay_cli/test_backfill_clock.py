"""A backfilled old event never overwrites a newer value already delivered: the attribute
clock holds for backfill too (real Redis, the real API deliverer, the sandbox over HTTP)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cmrelay_cli.main import main
from sandbox.runner import SandboxServer
from tests.support.events import envelope
from worker.pipeline.accept import accept_batch
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine


def _seats(sandbox: SandboxServer) -> Any:
    [customer] = httpx.get(f"{sandbox.control_url}/state").json()["customers"]
    return customer["attributes"]["custom"]["seats"]


def test_a_backfilled_older_event_does_not_overwrite_a_newer_delivered_value(
    api_engine: Engine, sandbox: SandboxServer, tmp_path: Path
) -> None:
    now = datetime.now(UTC).isoformat()
    live = envelope("group", user_id="bf-admin", group_id="bf-acme", traits={"seats": 9},
                    timestamp=now)  # fmt: skip
    api_engine.redis.lpush(api_engine.keys.ingest_queue, live)
    accept_batch(api_engine)
    assert deliver_entity(api_engine, "customer:bf-acme") == "delivered"
    assert _seats(sandbox) == 9
    old = {"type": "group", "groupId": "bf-acme", "userId": "bf-admin", "messageId": "bf-old",
           "timestamp": "2020-01-01T00:00:00Z",
           "traits": {"seats": 1, "plan": "legacy"}}  # fmt: skip
    history = tmp_path / "history.ndjson"
    history.write_text(json.dumps(old) + "\n")
    assert main(["backfill", str(history)]) == 0
    assert accept_batch(api_engine) == 1
    deliver_entity(api_engine, "customer:bf-acme")
    [customer] = httpx.get(f"{sandbox.control_url}/state").json()["customers"]
    custom = customer["attributes"]["custom"]
    assert custom["seats"] == 9  # the newer live value stands
    assert custom["plan"] == "legacy"  # what only the old event knew is still filled in
