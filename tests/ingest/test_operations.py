"""GET /health, /ready, /metrics and /openapi.json."""

from __future__ import annotations

import logging

import httpx
import pytest
import redis

from tests.ingest.conftest import WRITE_KEY


def test_health_answers_while_the_process_is_up(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}


def test_ready_reports_queue_length_and_a_delivery_pause_without_failing(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    assert http.post("/v1/identify", json={"userId": "u"}, auth=(WRITE_KEY, "")).status_code == 200
    ready = http.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "queue_length": 1,
        "high_water": 1_000_000,
        "paused": None,
    }
    redis_client.set("cmrelay:pause", "ChartMogul answered 401")
    paused = http.get("/ready")
    assert paused.status_code == 200
    assert paused.json()["paused"] == "ChartMogul answered 401"


def test_metrics_are_prometheus_text_with_requests_by_endpoint_and_outcome(
    http: httpx.Client,
) -> None:
    http.post("/v1/identify", json={"userId": "u"}, auth=(WRITE_KEY, ""))
    http.post("/v1/identify", json={"userId": "u"}, auth=("nope", ""))
    answer = http.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'cmrelay_ingest_requests_total{endpoint="identify",outcome="accepted"}' in text
    assert 'cmrelay_ingest_requests_total{endpoint="identify",outcome="unauthorized"}' in text
    assert 'cmrelay_ingest_events_queued_total{endpoint="identify"}' in text
    assert "cmrelay_ingest_queue_length" in text


def test_openapi_document_is_generated_from_the_schemas(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in ("/v1/identify", "/v1/group", "/v1/batch", "/webhook", "/chartmogul"):
        assert "post" in spec["paths"][path]
    identify = spec["components"]["schemas"]["Identify"]
    assert "userId" in identify["properties"]
    assert identify["properties"]["messageId"]["maxLength"] == 100
    assert "groupId" in spec["components"]["schemas"]["Group"]["required"]
    assert "Send Customer" in str(spec["components"]["schemas"]["ActionsCustomer"])
    assert "post" in spec["paths"]["/v1/track"]


def test_unknown_paths_and_methods_are_4xx(http: httpx.Client) -> None:
    assert http.get("/v1/identify").status_code == 405
    assert http.post("/v2/identify", json={}).status_code == 404


def test_a_refused_request_is_logged_with_why_but_never_its_body(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cmrelay.ingest")
    body = {"type": "identify", "traits": {"email": "private-person@example.com"}}  # no ids
    answer = http.post("/v1/identify", json=body, auth=(WRITE_KEY, ""))
    assert answer.status_code == 400
    unauthorized = http.post("/v1/identify", json=body, auth=("wrong-key", ""))
    assert unauthorized.status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "cmrelay.ingest"]
    assert any("answering 400 invalid_payload" in line for line in lines)
    assert any("answering 401" in line for line in lines)
    assert not any("private-person" in line for line in caplog.text.splitlines())
