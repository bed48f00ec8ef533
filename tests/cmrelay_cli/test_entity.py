"""`cmrelay entity`: one customer's state from real Redis, as written by the real pipeline."""

from __future__ import annotations

import argparse
import io
import json

import pytest
import redis

from cmrelay.dlq.store import DeadLetterQueue
from cmrelay_cli import entity
from tests.support.events import dead_letter, envelope
from worker.delivery.api.held import Held, HeldPart
from worker.delivery.api.held_store import HeldStore
from worker.pipeline.accept import accept_batch
from worker.pipeline.engine import Engine

pytestmark = pytest.mark.usefixtures("relay_env")


def _show(name: str, *, as_json: bool) -> tuple[int, str]:
    out = io.StringIO()
    code = entity.run(argparse.Namespace(entity=name, json=as_json), out)
    return code, out.getvalue()


def test_entity_shows_pending_events_confirmed_state_and_dead_letters(
    engine: Engine, client: redis.Redis
) -> None:
    raw = envelope(user_id="ev1", message_id="m-pending", traits={"plan": "pro"})
    client.lpush(engine.keys.ingest_queue, raw)
    accept_batch(engine)
    held = Held(HeldPart("cus_9", {"name": "Ev"}, {"plan": "basic"}, {"state": "NY"}))
    HeldStore(client, engine.keys, 60).save("ev1", held)
    entry_id = dead_letter(DeadLetterQueue(client, engine.keys, retention=3600), "ev1")
    code, out = _show("customer:ev1", as_json=True)
    view = json.loads(out)
    assert code == 0 and view["pending_events"] == 1
    assert view["pending"][0]["message_id"] == "m-pending"
    assert (
        view["confirmed_state"]["c"]["u"] == "cus_9"
        and 0 < view["confirmed_state_ttl_seconds"] <= 60
    )
    assert [d["id"] for d in view["dead_letters"]] == [entry_id]
    code, text = _show("customer:ev1", as_json=False)
    assert "pending events: 1" in text and "not kept by ChartMogul: ['state']" in text
    assert entry_id in text


def test_an_entity_without_its_prefix_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _show("acme", as_json=False)[0] == 2
    assert "customer:" in capsys.readouterr().err
