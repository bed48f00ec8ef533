"""`cmrelay trace`: an event's trail as the real accept step and a real delivery write it."""

from __future__ import annotations

import argparse
import io
import json

import pytest
import redis

from cmrelay_cli import trace
from tests.support.events import envelope
from tests.support.scripted import ScriptedDeliverer
from worker.pipeline.accept import accept_batch
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine

pytestmark = pytest.mark.usefixtures("relay_env")


def _trace(message_id: str, *, as_json: bool = True) -> tuple[int, str]:
    out = io.StringIO()
    code = trace.run(argparse.Namespace(message_id=message_id, json=as_json), out)
    return code, out.getvalue()


def test_an_event_is_traced_from_acceptance_to_delivery_with_its_duplicates(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    raw = envelope(user_id="tr1", message_id="m-trace", traits={"plan": "pro"})
    client.lpush(engine.keys.ingest_queue, raw, raw)
    accept_batch(engine)
    code, out = _trace("m-trace")
    view = json.loads(out)
    assert code == 0 and view["state"] == "accepted" and view["entity"] == "customer:tr1"
    assert view["duplicates"] == 1 and view["source"] == "wk_test" and view["type"] == "identify"
    assert deliver_entity(engine, "customer:tr1") == "delivered"
    view = json.loads(_trace("m-trace")[1])
    assert view["state"] == "delivered" and view["outcome_at"] >= view["accepted_at"]
    text = _trace("m-trace", as_json=False)[1]
    assert "now: delivered" in text and "seen again 1 time(s)" in text


def test_a_filtered_event_is_traced_with_why(engine: Engine, client: redis.Redis) -> None:
    raw = envelope("track", message_id="m-track")
    client.lpush(engine.keys.ingest_queue, raw)
    accept_batch(engine)
    assert json.loads(_trace("m-track")[1])["state"].startswith("ignored")


def test_an_unknown_event_says_where_else_to_look(capsys: pytest.CaptureFixture[str]) -> None:
    assert _trace("never-seen")[0] == 1
    assert "TRACE_RETENTION" in capsys.readouterr().err


def test_a_trail_costs_a_few_hundred_bytes(engine: Engine, client: redis.Redis) -> None:
    client.lpush(engine.keys.ingest_queue, envelope(user_id="tr2", message_id="m-size"))
    accept_batch(engine)
    size = client.memory_usage(engine.keys.trace("m-size"))
    assert size is not None and size < 600  # about 450 bytes: the figure docs/benchmarks.md quotes
