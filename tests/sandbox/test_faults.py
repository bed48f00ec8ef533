"""Fault injection: error rates, outage windows, resets, latency, and the counters."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.faults import Faults


def test_error_rate_1_for_502_answers_every_request_with_502(
    api: httpx.Client, control: httpx.Client
) -> None:
    control.post("/faults", json={"error_rates": {"502": 1.0}})
    responses = [api.get("/ping") for _ in range(10)]
    assert {r.status_code for r in responses} == {502}
    assert responses[0].text == "502 Bad Gateway"
    assert responses[0].headers["content-type"].startswith("text/plain")


def test_injected_4xx_and_429_use_json_bodies(api: httpx.Client, control: httpx.Client) -> None:
    control.post("/faults", json={"error_rates": {"429": 1.0}})
    assert api.get("/ping").json()["code"] == 429
    control.post("/faults", json={"error_rates": {"423": 1.0}})
    assert api.get("/ping").json() == {"code": 423, "message": "Locked", "param": None}


def test_error_rates_are_probabilities() -> None:
    faults = Faults(SandboxConfig(error_rates={500: 0.25, 503: 0.25}, seed=7))
    picks = [faults.pick_error() for _ in range(4000)]
    assert 800 < picks.count(500) < 1200
    assert 800 < picks.count(503) < 1200
    assert picks.count(None) > 1600


def test_an_outage_window_answers_500_text_then_ends(
    api: httpx.Client, control: httpx.Client
) -> None:
    control.post("/faults", json={"outage": {"seconds": 0.5, "mode": "500"}})
    during = api.get("/ping")
    assert (during.status_code, during.text) == (500, "500 Internal Server Error")
    deadline = time.monotonic() + 5
    while api.get("/ping").status_code != 200:
        assert time.monotonic() < deadline, "the outage never ended"
        time.sleep(0.05)


def test_a_reset_outage_drops_connections(sandbox_server: object, control: httpx.Client) -> None:
    control.post("/faults", json={"outage": {"seconds": 30, "mode": "reset"}})
    url = str(control.base_url.join("/v1/ping"))
    with pytest.raises(httpx.TransportError):
        httpx.get(url, auth=("sandbox-test-key", ""), timeout=5)
    control.post("/faults", json={"outage": {"seconds": 0}})
    assert httpx.get(url, auth=("sandbox-test-key", ""), timeout=5).status_code == 200
    assert control.get("/stats").json()["by_status"]["reset"] == 1


def test_latency_is_added(api: httpx.Client, control: httpx.Client) -> None:
    control.post("/faults", json={"latency": 0.2, "latency_max": 0.3})
    started = time.monotonic()
    assert api.get("/ping").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_bad_fault_settings_are_400_and_change_nothing(control: httpx.Client) -> None:
    before = control.get("/faults").json()
    for body in (
        {"error_rates": {"200": 0.5}},
        {"error_rates": {"500": 2}},
        {"error_rates": {"500": 0.7, "502": 0.7}},
        {"latency": -1},
        {"outage": {"mode": "fire"}},
        {"rate_limit": "many"},
    ):
        response = control.post("/faults", json=body)
        assert response.status_code == 400, body
    assert control.get("/faults").json() == before


def test_the_control_api_ignores_faults_and_auth(control: httpx.Client) -> None:
    control.post("/faults", json={"error_rates": {"500": 1.0}, "rate_limit": 1})
    for _ in range(3):
        assert control.get("/state").status_code == 200


def test_stats_count_by_endpoint_template_and_status(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    api.get("/customers/cus_a")
    api.get("/customers/cus_b")
    api.get("/ping", auth=("wrong", ""))
    stats = control.get("/stats").json()
    assert stats["by_endpoint"]["GET /v1/customers/{uuid}"] == {"404": 2}
    assert stats["by_endpoint"]["GET /v1/ping"] == {"401": 1}
    assert stats["by_endpoint"]["POST /v1/data_sources"] == {"200": 1}
    assert stats["total"] == 4


def test_reset_restores_start_up_settings_and_empties_the_store(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    control.post("/faults", json={"latency": 1, "rate_limit": 3})
    after = control.post("/reset").json()
    assert (after["latency"], after["rate_limit"]) == (0.0, 0)
    state = control.get("/state").json()
    assert state["data_sources"] == [] and state["customers"] == []
