"""Operability of real worker processes: JSON logs without secrets, the heartbeat behind
`cmrelay worker-health`, and the relay-wide metrics behind `cmrelay metrics`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest

from tests.support.processes import ROOT, wait_for
from tests.support.recorder_relay import Relay, company_event, message_id, new_entity, start_relay

SECRETS = {
    "CHARTMOGUL_API_KEY": "sk-live-SECRET-4f1a9c",
    "SEGMENT_WRITE_KEYS": "wk-SECRET-77b2e0",
    "ADMIN_TOKEN": "adm-SECRET-c0ffee",
}
TRAIT_VALUE = "TRAIT-VALUE-never-logged-9d3"


@pytest.fixture
def relay(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    """One worker, a short heartbeat TTL, and secrets in its environment."""
    yield from start_relay(
        redis_url, tmp_path_factory.mktemp("ops"), workers=1,
        WORKER_HEARTBEAT_TTL="1.5", **SECRETS,
    )  # fmt: skip


def cmrelay(relay: Relay, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a cmrelay subcommand against the relay's environment."""
    return subprocess.run(
        [sys.executable, "-m", "cmrelay_cli", *args],
        cwd=ROOT, env=relay.workers.env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_worker_stderr_is_json_one_line_per_event_outcome_without_secrets(relay: Relay) -> None:
    cid, entity = new_entity()
    raw = company_event(cid, traits={"plan": TRAIT_VALUE})
    relay.push(raw)
    relay.wait_delivered(entity, [message_id(raw)])
    wanted = message_id(raw)
    lines = wait_for(
        lambda: [ln for ln in relay.workers.stderr_lines(0) if wanted in ln],
        10, "the outcome line of the event",
    )  # fmt: skip
    records = [orjson.loads(line) for line in relay.workers.stderr_lines(0)]  # all JSON
    assert any(r["logger"].startswith("celery") for r in records)  # Celery's own lines too
    outcome = orjson.loads(lines[0])
    assert outcome["message_id"] == wanted and outcome["entity"] == entity
    assert outcome["outcome"] == "delivered" and outcome["level"] == "info"
    text = "\n".join(relay.workers.stderr_lines(0))
    assert TRAIT_VALUE not in text
    for secret in [*SECRETS.values(), relay.recorder.url]:
        assert secret not in text


def test_worker_health_follows_the_heartbeat_and_the_pause(relay: Relay) -> None:
    assert cmrelay(relay, "worker-health").returncode == 0
    relay.recorder.fail(401, method="GET", entity="")  # the pause probe keeps failing
    relay.client.set(relay.keys.pause, "HTTP 401 from ChartMogul")
    assert cmrelay(relay, "worker-health").returncode == 0  # alive while paused ...
    not_ready = cmrelay(relay, "worker-health", "--ready")
    assert not_ready.returncode == 1  # ... but not ready
    assert not_ready.stderr.strip() == "unhealthy: delivery is paused: HTTP 401 from ChartMogul"
    relay.recorder.reset()  # the next probe succeeds and resumes delivery
    wait_for(lambda: cmrelay(relay, "worker-health", "--ready").returncode == 0, 20, "resume")
    relay.workers.kill(0)  # SIGKILL: no clean-up, the heartbeat just stops
    failed = wait_for(
        lambda: (r := cmrelay(relay, "worker-health")).returncode != 0 and r, 15, "stale beat"
    )
    assert failed.stderr.count("\n") == 1 and "heartbeat" in failed.stderr


def test_worker_health_fails_with_one_line_when_redis_is_unreachable(relay: Relay) -> None:
    relay.workers.env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    result = cmrelay(relay, "worker-health")
    assert result.returncode == 1
    assert result.stderr == "unhealthy: Redis is not reachable (ConnectionError)\n"


def test_metrics_command_reports_deliveries_responses_latency_and_workers(relay: Relay) -> None:
    events = []
    for _ in range(3):
        cid, entity = new_entity()
        raw = company_event(cid)
        relay.push(raw)
        events.append((entity, raw))
    for entity, raw in events:
        relay.wait_delivered(entity, [message_id(raw)])
    result = cmrelay(relay, "metrics")
    assert result.returncode == 0, result.stderr
    samples = _samples(result.stdout)
    assert samples['cmrelay_deliveries_total{outcome="delivered"}'] >= 4  # with the warm-up
    assert samples["cmrelay_delivery_latency_seconds_count"] >= 4
    assert samples['cmrelay_delivery_latency_seconds_bucket{le="+Inf"}'] >= 4
    assert samples['cmrelay_chartmogul_responses_total{status="201"}'] >= 4  # the creates
    assert samples["cmrelay_workers_alive"] == 1
    assert samples["cmrelay_delivery_paused"] == 0
    assert samples["cmrelay_redis_up"] == 1


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out
