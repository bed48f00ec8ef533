"""Targeted fault rules and the request log of the control API."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox.rules import RuleError, Rules, parse_rule


def test_a_rule_fails_only_requests_that_match_and_only_its_times(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    rule = {"match": "cus-a", "method": "POST", "status": 502, "times": 2}
    assert control.post("/faults", json={"rules": [rule]}).status_code == 200
    body = {"data_source_uuid": source, "external_id": "cus-b", "name": "B"}
    assert api.post("/customers", json=body).status_code == 201  # no match
    body = {**body, "external_id": "cus-a"}
    assert [api.post("/customers", json=body).status_code for _ in range(3)] == [502, 502, 201]
    assert api.get("/customers", params={"external_id": "cus-a"}).status_code == 200  # a GET
    (snapshot,) = control.get("/faults").json()["rules"]
    assert snapshot["hits"] == 2 and snapshot["times"] == 2


def test_a_rule_can_match_the_query_and_carry_retry_after(
    api: httpx.Client, control: httpx.Client
) -> None:
    rule = {"match": "external_id=x1", "status": 429, "retry_after": 3, "times": 1}
    control.post("/faults", json={"rules": [rule]})
    limited = api.get("/customers", params={"external_id": "x1"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert api.get("/customers", params={"external_id": "x1"}).status_code == 200


def test_a_rule_with_seconds_ends_and_latency_alone_only_slows(
    api: httpx.Client, control: httpx.Client
) -> None:
    control.post("/faults", json={"rules": [{"status": 503, "seconds": 0.3}]})
    assert api.get("/ping").status_code == 503
    deadline = time.monotonic() + 5
    while api.get("/ping").status_code != 200:
        assert time.monotonic() < deadline, "the rule never ended"
        time.sleep(0.05)
    control.post("/faults", json={"rules": [{"match": "/ping", "latency": 0.2}]})
    started = time.monotonic()
    assert api.get("/ping").status_code == 200
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    "raw",
    [
        {"status": 200},
        {"method": "FETCH", "status": 500},
        {"match": "x"},  # neither a status nor a latency
        {"status": 500, "times": -1},
        {"status": "bad"},
        {"status": 500, "colour": "red"},
        "not an object",
    ],
)
def test_a_bad_rule_is_refused_by_name(raw: object) -> None:
    with pytest.raises(RuleError):
        parse_rule(raw, now=0.0)


def test_a_bad_rule_list_changes_nothing(control: httpx.Client) -> None:
    control.post("/faults", json={"rules": [{"status": 500, "times": 1}]})
    response = control.post("/faults", json={"rules": [{"status": 500}, {"status": 99}]})
    assert response.status_code == 400 and "99" in response.json()["message"]
    assert len(control.get("/faults").json()["rules"]) == 1
    rules = Rules()
    with pytest.raises(RuleError):
        rules.replace({"status": 500})


def test_the_request_log_lists_what_was_answered_in_order(
    api: httpx.Client, control: httpx.Client, source: str
) -> None:
    before = control.get("/requests").json()["last_seq"]
    api.post("/customers", json={"data_source_uuid": source, "external_id": "log-1", "name": "L"})
    api.get("/customers", params={"external_id": "log-1"})
    api.get("/ping", auth=("wrong", ""))
    found = control.get("/requests", params={"since": before}).json()["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in found] == [
        ("POST", "/v1/customers", 201),
        ("GET", "/v1/customers", 200),
        ("GET", "/v1/ping", 401),
    ]
    assert found[0]["body"]["external_id"] == "log-1" and found[1]["query"] == "external_id=log-1"
    assert found[0]["seq"] < found[1]["seq"] and found[0]["at"] <= found[1]["at"]
    matched = control.get("/requests", params={"since": before, "match": "log-1"}).json()
    assert len(matched["requests"]) == 2
    assert control.get("/requests", params={"since": "x"}).status_code == 400


def test_reset_clears_rules_and_the_log(api: httpx.Client, control: httpx.Client) -> None:
    control.post("/faults", json={"rules": [{"status": 500}]})
    api.get("/ping")
    control.post("/reset")
    assert control.get("/faults").json()["rules"] == []
    assert control.get("/requests").json() == {"requests": [], "last_seq": 0}
