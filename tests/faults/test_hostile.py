"""Hostile input and hard failures through the whole relay (issue 12), in `make test-faults`:
real ingest and worker processes over a private Redis. Each class is also tested on its own in
tests/ingest/test_hostile.py, tests/ingest/test_protocol.py and tests/admin/; here they run
together against a live pipeline, which must answer each with a 4xx (never a 5xx), queue every
good event next to them, and digest whatever it accepted without a worker crash."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from cmrelay.keys import Keys
from cmrelay.redis_server import PrivateRedis, free_port
from cmrelay.status import live_workers
from ingest.auth import js_stringify
from tests.support.processes import FAST_ENGINE_ENV, ROOT, WorkerProcesses, wait_for
from tests.support.raw_http import send_until_answered

from .pipeline import AUTH, WRITE_KEY, Pipeline, pipeline
from .report import Summary, record

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


# --- a worker started while Redis is full -------------------------------------------------
@pytest.fixture
def full_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    yield server
    server.cleanup()


def test_a_worker_started_while_redis_is_full_waits_then_starts(
    full_redis: PrivateRedis, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(full_redis.url)
    client.set("ballast", b"x" * 2_000_000)
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) // 2)
    keys = Keys("fullstart")
    env = {
        **FAST_ENGINE_ENV, "REDIS_URL": full_redis.url, "CMRELAY_KEY_PREFIX": keys.prefix,
        "CMRELAY_CONFIG": os.devnull, "CHARTMOGUL_WEBHOOK_URL": "http://127.0.0.1:9/unused",
    }  # fmt: skip
    workers = WorkerProcesses(env, tmp_path)
    workers.start(1)
    try:
        waiting = wait_for(
            lambda: any("worker start waits" in line for line in workers.stderr_lines(0))
            or workers.procs[0].poll() is not None,
            30, "the worker to report that it waits",
        )  # fmt: skip
        assert waiting and workers.procs[0].poll() is None, workers.logs()
        # Without the wait, Celery exits on kombu's first refused write within about a second.
        assert stays_alive(workers.procs[0], 4.0), workers.logs()
        assert live_workers(client, keys, 30, float(client.time()[0]) + 1) == []
        client.config_set("maxmemory", 0)  # room again: the waiting worker starts by itself
        wait_for(
            lambda: live_workers(client, keys, 30, float(client.time()[0]) + 1),
            30, "the worker's first heartbeat once Redis has room",
        )  # fmt: skip
        assert workers.procs[0].poll() is None, workers.logs()
    finally:
        workers.stop()
        client.close()


def stays_alive(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Watch `process` for `seconds` (an observation window): False as soon as it exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        time.sleep(0.1)
    return process.poll() is None


# --- every hostile-input class against one live pipeline (and an admin process) ------------
SECRET = "faults-shared-secret"
ADMIN_TOKEN = "faults-admin-token-0123456789"
SEEN: Counter[str] = Counter()


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with pipeline(
        tmp_path_factory.mktemp("hostile"), workers=2, RETRY_WINDOW="15",
        SEGMENT_SHARED_SECRET=SECRET,
    ) as p:  # fmt: skip
        yield p


@dataclass
class Admin:
    url: str
    pid: int


@pytest.fixture(scope="module")
def admin(pipe: Pipeline) -> Iterator[Admin]:
    """`cmrelay admin` on the pipeline's Redis, as a process of its own."""
    port = free_port()
    env = {**pipe.env, "ADMIN_TOKEN": ADMIN_TOKEN, "ADMIN_MAX_FAILURES": "5"}
    log = (pipe.tmp / "admin.log").open("wb")
    args = [sys.executable, "-m", "cmrelay_cli", "admin", "--port", str(port)]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url + "/login"), 30, "the admin to answer")
        yield Admin(url, proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def identify(user: str, traits: Any = None) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "messageId": f"h-{user}-{time.monotonic_ns()}",
            "traits": traits or {"plan": "pro"}}  # fmt: skip


def nested(depth: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        inner = {"a": inner}
    return inner


def sign(event: Any) -> str:
    return hmac.new(SECRET.encode(), js_stringify(event), hashlib.sha1).hexdigest()


def seen(answer: httpx.Response | int, expected: int, what: str) -> None:
    status = answer if isinstance(answer, int) else answer.status_code
    SEEN[f"{what}: {status}"] += 1
    assert status == expected, (what, answer if isinstance(answer, int) else answer.text[:300])


def test_hostile_events_are_refused_one_by_one_and_their_batches_go_through(
    pipe: Pipeline,
) -> None:
    with httpx.Client(base_url=pipe.ingest.url, headers={"Authorization": AUTH}) as http:
        deep = [identify(f"d{n}") for n in range(5)]
        deep.insert(2, identify("deep", nested(252)))
        answer = http.post("/v1/batch", json={"batch": deep})
        seen(answer, 200, "batch with one item nested 252 deep")
        assert [r["index"] for r in answer.json()["rejected"]] == [2]
        seen(http.post("/v1/identify", json=identify("deep1", nested(600))), 400, "deep event")
        big = b'{"batch":[%s,{"type":"identify","userId":"big","traits":{"n":%d}}]}' % (
            orjson.dumps(identify("b0")), 2**64,
        )  # fmt: skip
        answer = http.post("/v1/batch", content=big)
        seen(answer, 200, "batch with an integer beyond 64 bits")
        assert [r["index"] for r in answer.json()["rejected"]] == [1]
        raw = b'{"type":"identify","userId":"b1","traits":{"n":%d}}' % 10**30
        seen(http.post("/v1/identify", content=raw), 400, "event with 10^30")
        controls = "\x1b]0;x\x07\x1b[2J\r\u202e\x9b"
        answer = http.post("/v1/identify", json=identify(f"ctl{controls}", {"name": controls}))
        seen(answer, 200, "control and bidi characters in event data (queued as data)")
    signed = identify("victim")
    array = orjson.dumps([signed, identify("victim", {"email": "attacker@example.com"})])
    headers = {"X-Signature": sign(signed), "Content-Type": "application/json"}
    seen(httpx.post(pipe.ingest.url + "/webhook", content=array, headers=headers), 401,
         "webhook array signed on its first event only")  # fmt: skip
    answer = httpx.post(pipe.ingest.url + "/webhook", content=array, headers=headers,
                        params={"writeKey": WRITE_KEY})  # fmt: skip
    seen(answer, 200, "the same array with the write key")


def test_hostile_connections_are_cut_off_and_the_ingest_stays_small_and_fast(
    pipe: Pipeline,
) -> None:
    assert pipe.ingest.proc is not None
    before = rss_mb(pipe.ingest.proc.pid)
    head = b"GET /health HTTP/1.1\r\nHost: ingest\r\nCookie: "
    for _ in range(4):
        got = send_until_answered(pipe.ingest.url, head, b"c" * 65536, max_bytes=20_000_000,
                                  seconds=10)  # fmt: skip
        seen(got.status or 0, 431, "unfinished 20 MB header")
    many = "".join(f"X-H{n}: v\r\n" for n in range(150)).encode()
    got = send_until_answered(pipe.ingest.url, b"GET /health HTTP/1.1\r\n" + many + b"\r\n", b"",
                              max_bytes=1, seconds=5)  # fmt: skip
    seen(got.status or 0, 431, "150 headers")
    slow = send_until_answered(pipe.ingest.url, b"POST /v1/batch HTTP/1.1\r\n", b"X",
                               max_bytes=100_000, seconds=20, pause=0.2)  # fmt: skip
    seen(slow.status or 0, 408, "headers a byte every 0.2 s")
    assert slow.seconds < 15
    grown = rss_mb(pipe.ingest.proc.pid) - before
    started = time.monotonic()
    assert httpx.get(pipe.ingest.url + "/health", timeout=5).status_code == 200
    health_ms = (time.monotonic() - started) * 1000
    SEEN[f"ingest RSS growth {grown:.0f} MB, /health {health_ms:.0f} ms"] += 1
    assert grown < 50 and health_ms < 500


def test_hostile_admin_requests_get_4xx_and_the_admin_stays_small(
    pipe: Pipeline, admin: Admin
) -> None:
    before = rss_mb(admin.pid)
    login = admin.url + "/login"
    seen(httpx.post(login, data={"token": "x" * 150_000}), 413, "150 kB login body")
    head = (b"POST /login HTTP/1.1\r\nHost: admin\r\nContent-Type: application/x-www-form-"
            b"urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    piece = b"10000\r\n" + b"t" * 65536 + b"\r\n"
    for _ in range(3):
        got = send_until_answered(admin.url, head, piece, max_bytes=30_000_000, seconds=10)
        seen(got.status or 0, 413, "streamed 30 MB login body")
    grown = rss_mb(admin.pid) - before
    SEEN[f"admin RSS growth {grown:.0f} MB"] += 1
    assert grown < 50
    statuses = Counter(
        httpx.post(login, data={"token": f"guess-{n}"}).status_code for n in range(30)
    )
    SEEN[f"30 wrong logins: {dict(sorted(statuses.items()))}"] += 1
    assert statuses == {401: 5, 429: 25}
    other = httpx.HTTPTransport(local_address="127.0.0.3")  # the operator, not the guesser
    with httpx.Client(base_url=admin.url, transport=other, timeout=10) as user:
        seen(user.post("/login", data={"token": ADMIN_TOKEN}), 303, "operator login")
        seen(user.get("/", params={"done": "bulk", "n": "abc"}), 200, "/?done=bulk&n=abc")
        cookie = user.cookies["cmrelay_admin"]
        page = user.get("/").text
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        user.post("/logout", data={"csrf": csrf})
    with httpx.Client(base_url=admin.url, cookies={"cmrelay_admin": cookie}) as thief:
        seen(thief.get("/"), 303, "old session cookie after logout")


def test_the_workers_digest_whatever_was_accepted_next_to_the_hostile_input(
    pipe: Pipeline,
) -> None:
    try:
        wait_for(pipe.idle, 120, "the workers to take in every accepted event", every=0.2)
        wait_for(lambda: _digested(pipe), 60, "every accepted event to be finished", every=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {pipe.describe()}\n{pipe.logs()}") from None
    assert all(p.poll() is None for p in pipe.workers.procs), pipe.logs()
    c = pipe.counters()
    accepted = c.get("accepted", 0)
    entries = pipe.dead_letter_entries()
    record(
        Summary(
            "hostile input", pipe.target.name, sum(SEEN.values()), accepted,
            c.get("delivered", 0), c.get("duplicate", 0), c.get("dead_lettered", 0),
            accepted - _finished(c), 0, 0, 0, 0,
            ", ".join(f"{k}: {v}" for k, v in sorted(pipe.target.calls().items())),
            notes="; ".join(k + (f" (x{v})" if v > 1 else "") for k, v in sorted(SEEN.items()))
            + f"; dead letters: {sorted({e.reason for e in entries})}"
            "; workers alive",
        )
    )  # fmt: skip


def _finished(c: dict[str, int]) -> int:
    return c.get("delivered", 0) + c.get("dead_lettered", 0) + c.get("skipped_at_delivery", 0)


def _digested(pipe: Pipeline) -> bool:
    c = pipe.counters()
    return c.get("accepted", 0) > 0 and _finished(c) == c.get("accepted", 0)
