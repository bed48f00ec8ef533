"""The mapping router inside accept, and the policy read once when a worker starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from cmrelay_cli.main import main
from tests.support.events import envelope
from worker.mapping import CallOverrides, MappingPolicy
from worker.pipeline.accept import accept_batch
from worker.pipeline.engine import Engine


def _counters(client: redis.Redis, engine: Engine) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(engine.keys.counters).items()}


def test_an_event_the_integrations_object_disables_is_counted_as_filtered(
    engine: Engine, client: redis.Redis
) -> None:
    off = envelope(traits={"company": {"id": "f1"}})
    off = off.replace(b'"traits"', b'"integrations":{"ChartMogul":false},"traits"')
    client.lpush(engine.keys.ingest_queue, off)
    accept_batch(engine)
    assert client.llen(engine.keys.mailbox("customer:f1")) == 0
    assert _counters(client, engine) == {"filtered:the integrations object disables ChartMogul": 1}


def test_the_loaded_policy_decides_the_route(engine: Engine, client: redis.Redis) -> None:
    engine._policy = MappingPolicy(identify=CallOverrides(ignore=frozenset({"company.id"})))
    client.lpush(engine.keys.ingest_queue, envelope(user_id="u7", traits={"company": {"id": "c7"}}))
    accept_batch(engine)
    assert client.llen(engine.keys.mailbox("customer:u7")) == 1  # company.id ignored
    assert client.llen(engine.keys.mailbox("customer:c7")) == 0


def test_a_group_call_by_an_anonymous_user_links_that_user(
    engine: Engine, client: redis.Redis
) -> None:
    engine._policy = MappingPolicy(company_creation="group")
    group = envelope("group", user_id=None, group_id="g9")
    group = group.replace(b'"traits"', b'"anonymousId":"anon-9","traits"')
    client.lpush(engine.keys.ingest_queue, group)
    accept_batch(engine)
    assert client.hget(engine.keys.user_groups, "anon-9") == b"g9"


def test_a_bad_mapping_file_stops_the_worker_with_one_line(
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "mapping.toml"
    bad.write_text("[identify.types]\nplan = 'Colour'\n")
    (tmp_path / "relay.toml").write_text("")
    monkeypatch.setenv("CMRELAY_CONFIG", str(tmp_path / "relay.toml"))
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MAPPING_FILE", str(bad))
    assert main(["worker"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cmrelay: configuration error: MAPPING_FILE") and "\n" not in err
    assert "Colour" in err
