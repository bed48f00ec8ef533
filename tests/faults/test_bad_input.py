"""Bad input through the real ingest to real workers: hypothesis-generated events and
schemathesis against the ingest's own /openapi.json. No 5xx, every rejection explained, no
worker crash, and every accepted event accounted for."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.strategies import json_values

from .pipeline import AUTH, WRITE_KEY, Pipeline, pipeline
from .report import Summary, record

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]

ids = st.none() | st.integers() | st.text(max_size=12) | st.booleans() | json_values
timestamps = st.none() | st.text(max_size=30) | st.datetimes().map(lambda d: d.isoformat() + "Z")
trait_keys = st.text(max_size=20) | st.sampled_from(["email", "name", "company", "plan", "id"])
traits = st.dictionaries(trait_keys, json_values, max_size=6) | json_values
events = st.fixed_dictionaries(
    {"type": st.sampled_from(["identify", "group", "track", "page", "alias", "nonsense"])},
    optional={
        "messageId": st.text(max_size=40), "userId": ids, "anonymousId": ids, "groupId": ids,
        "timestamp": timestamps, "traits": traits, "integrations": json_values,
        "context": json_values,
    },
)  # fmt: skip
# Valid in shape, hostile in content: the ingest takes these, so the workers must cope with them.
names = st.text(min_size=1, max_size=40).filter(str.strip)
plausible = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["identify", "group"]), "messageId": names, "userId": names,
        "groupId": names, "traits": st.dictionaries(trait_keys, json_values, max_size=6),
        "timestamp": st.datetimes().map(lambda d: d.isoformat() + "Z"),
    },
)  # fmt: skip
batches = st.lists(plausible | events | json_values, min_size=1, max_size=20)
SEEN: dict[str, int] = {"requests": 0, "rejected requests": 0, "rejected events": 0, "5xx": 0}


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    # A short retry window: an event no retry can deliver (say, an id the deliverer cannot put
    # in a URL) must reach the DLQ with its reason within the test, not after 600 s.
    with pipeline(tmp_path_factory.mktemp("badinput"), workers=2, RETRY_WINDOW="15") as p:
        yield p


@pytest.fixture(scope="module")
def http(pipe: Pipeline) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pipe.ingest.url, headers={"Authorization": AUTH}) as c:
        yield c


def _explained(response: httpx.Response) -> None:
    SEEN["requests"] += 1
    SEEN["5xx"] += response.status_code >= 500
    assert response.status_code < 500, response.text[:500]
    body: Any = response.json()
    if response.status_code >= 400:
        SEEN["rejected requests"] += 1
        assert body.get("message"), f"a rejection without a reason: {response.text[:300]}"
    else:
        SEEN["rejected events"] += len(body.get("rejected", []))
        for item in body.get("rejected", []):
            assert item.get("reason"), f"an event rejected without a reason: {item}"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=batches, endpoint=st.sampled_from(["/v1/batch", "/v1/identify", "/v1/group"]))
def test_generated_events_get_an_answer_with_a_reason_and_never_a_5xx(
    http: httpx.Client, endpoint: str, batch: list[Any]
) -> None:
    document: Any = {"batch": batch} if endpoint == "/v1/batch" else batch[0]
    try:
        content = orjson.dumps(document)
    except orjson.JSONEncodeError:
        return  # integers beyond 64 bits: not something a client can send as JSON here
    response = http.post(endpoint, content=content, headers={"Content-Type": "application/json"})
    _explained(response)


def test_schemathesis_finds_no_server_error_in_the_ingest(pipe: Pipeline, tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.ndjson"
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{pipe.ingest.url}/openapi.json",
         "--checks", "not_a_server_error", "--auth", f"{WRITE_KEY}:", "--max-examples", "15",
         "--seed", "1", "--workers", "1", "--max-time", "40", "--report", "ndjson",
         "--report-ndjson-path", str(report)],
        capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path,
    )  # fmt: skip
    print(result.stdout[-2500:])
    cases = re.search(r"(\d+) generated", result.stdout)
    SEEN["schemathesis cases"] = int(cases.group(1)) if cases else 0
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_workers_digest_whatever_the_ingest_accepted(pipe: Pipeline) -> None:
    from tests.support.processes import wait_for

    try:
        wait_for(pipe.idle, 120, "the workers to take in every accepted event", every=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {pipe.describe()}\n{pipe.logs()}") from None
    assert all(p.poll() is None for p in pipe.workers.procs), pipe.logs()
    c = pipe.counters()
    accepted = c.get("accepted", 0)
    done = (
        c.get("delivered", 0)
        + c.get("unchanged", 0)
        + c.get("dead_lettered", 0)
        + c.get("skipped_at_delivery", 0)
    )
    print(f"\nworker counters after bad input: {c}")
    assert accepted > 0 and done == accepted, c
    entries = pipe.dead_letter_entries()
    for entry in entries:
        assert entry.reason, entry
    dead = c.get("dead_lettered", 0)
    record(
        Summary(
            "bad input",
            pipe.target.name,
            SEEN["requests"],
            accepted,
            c.get("delivered", 0),
            c.get("duplicate", 0),
            dead,
            accepted - done,
            0,
            0,
            0,
            0,
            ", ".join(f"{k}: {v}" for k, v in sorted(pipe.target.calls().items())),
            notes=(
                f"hypothesis: {SEEN['requests']} requests, {SEEN['rejected requests']} refused "
                f"and {SEEN['rejected events']} events rejected, each with a reason, 5xx: "
                f"{SEEN['5xx']}; schemathesis: {SEEN.get('schemathesis cases', 0)} cases, no "
                f"5xx; dead letters: {sorted({e.reason for e in entries})}; workers alive"
            ),
        )
    )
