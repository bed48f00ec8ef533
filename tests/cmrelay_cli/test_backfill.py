"""`cmrelay backfill` end to end on the session's real Redis: counts, bad lines by file:line,
a second run that changes nothing, resume after an interruption, the high-water wait, status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from cmrelay.envelope import ORIGIN_BACKFILL, Envelope
from cmrelay.settings import Settings
from cmrelay_cli.main import main
from ingest.backfill import Backfill, history_files
from tests.support.history import History, write_history
from tests.support.processes import wait_for
from worker.pipeline.accept import accept_batch
from worker.pipeline.engine import Engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "relay.toml").write_text("")
    values = {"REDIS_URL": settings.redis_url, "CMRELAY_KEY_PREFIX": settings.key_prefix,
              "CMRELAY_CONFIG": str(tmp_path / "relay.toml")}  # fmt: skip
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def history(tmp_path: Path) -> History:
    return write_history(tmp_path / "history", files=3, events_per_file=60)


@pytest.fixture
def queued(engine: Engine) -> Iterator[Any]:
    """A reader of every envelope on the ingest queue."""
    yield lambda: [Envelope.from_bytes(r) for r in engine.redis.lrange(engine.keys.ingest_queue,
                                                                       0, -1)]  # fmt: skip


def _backfill(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["backfill", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _accept_all(engine: Engine) -> None:
    while accept_batch(engine):
        pass


def _mailboxes(engine: Engine) -> dict[str, int]:
    pattern = engine.keys.mailbox("*")
    return {k.decode(): int(engine.redis.llen(k)) for k in engine.redis.scan_iter(pattern)}


def test_counts_and_bad_lines_by_file_and_line(
    env: dict[str, str], history: History, queued: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _backfill(capsys, str(history.files[0].parent))
    assert code == 0
    envelopes = queued()
    assert len(envelopes) == history.valid
    assert {e.origin for e in envelopes} == {ORIGIN_BACKFILL}
    assert {e.message_id for e in envelopes} >= history.message_ids
    for name, line in history.bad:
        assert f"{name}:{line}: " in err
    assert f"read {history.valid + history.ignored + len(history.bad)}," in out
    assert f"queued {history.valid}, ignored {history.ignored}, rejected {len(history.bad)}" in out


def test_a_second_run_changes_nothing(
    env: dict[str, str], history: History, engine: Engine, queued: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    directory = str(history.files[0].parent)
    _backfill(capsys, directory)
    _accept_all(engine)
    boxes = _mailboxes(engine)
    assert sum(boxes.values()) > 0

    code, out, _ = _backfill(capsys, directory)  # the checkpoints say every file is done
    assert code == 0 and "already done 3" in out and queued() == []

    _backfill(capsys, directory, "--restart")  # read again: dedupe drops every event
    assert len(queued()) == history.valid
    _accept_all(engine)
    assert _mailboxes(engine) == boxes
    counters = engine.redis.hgetall(engine.keys.counters)
    assert int(counters[b"duplicate"]) == history.valid


def test_resume_after_a_limit_queues_each_event_once(
    env: dict[str, str], history: History, queued: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(history.files[0].parent)
    for _ in range(10):  # stop 7 times mid-file (batch of 5, limit 23), then finish
        code, out, _ = _backfill(capsys, directory, "--limit", "23", "--batch-size", "5")
        assert code == 0
        if "already done 3" in out:
            break
    ids = [e.message_id for e in queued()]
    assert len(ids) == len(set(ids)) == history.valid
    assert set(ids) >= history.message_ids


def test_resume_after_sigkill_skips_no_event(
    env: dict[str, str], tmp_path: Path, queued: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    history = write_history(tmp_path / "big", files=4, events_per_file=1500, bad_every=97)
    child = subprocess.Popen(
        [sys.executable, "-m", "cmrelay_cli", "backfill", str(tmp_path / "big"),
         "--batch-size", "7"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: len(queued()) >= 500 or child.poll() is not None, 30, "a few batches")
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    assert len(queued()) < history.valid, "killed too late to test a resume"
    code, _, _ = _backfill(capsys, str(tmp_path / "big"))
    assert code == 0
    ids = [e.message_id for e in queued()]
    assert set(ids) >= history.message_ids
    assert len(ids) == len(set(ids)) == history.valid  # push and checkpoint are one step


def test_dry_run_counts_and_names_entities_and_queues_nothing(
    env: dict[str, str], history: History, queued: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _backfill(capsys, "--dry-run", *map(str, history.files))
    assert code == 0 and queued() == []
    assert f"would queue {history.valid}" in out
    assert "by type: " in out and "group " in out and "identify " in out
    assert "entities it would touch: " in out and "customer:acme-" in out
    code, out, _ = _backfill(capsys, "status")
    assert "no backfill checkpoints" in out


def test_status_shows_checkpoints_and_counters(
    env: dict[str, str], history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    _backfill(capsys, str(history.files[0]), "--limit", "10")
    _backfill(capsys, str(history.files[1]))
    code, out, _ = _backfill(capsys, "status")
    assert code == 0
    assert f"{history.files[0].resolve()}: at line 11  read 10" in out
    assert f"{history.files[1].resolve()}: done  read 60" in out
    assert "total: read 70" in out


def test_above_the_high_water_mark_it_waits_instead_of_failing(
    settings: Settings, history: History, engine: Engine, queued: Any
) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    mark = history.valid + 1  # once drained, the whole history fits under it
    client.lpush(engine.keys.ingest_queue, *[b"x"] * mark)
    waited = threading.Event()
    backfill = Backfill(client, engine.keys, high_water=mark, full_wait=0.01,
                        on_progress=lambda _: waited.set() if backfill.waits else None)  # fmt: skip
    runner = threading.Thread(target=backfill.run, args=(history_files(history.files),))
    runner.start()
    try:
        wait_for(waited.is_set, 10, "the backfill to wait at the high-water mark")
        assert client.llen(engine.keys.ingest_queue) == mark  # nothing pushed over the mark
    finally:
        client.delete(engine.keys.ingest_queue)  # the workers drain the queue
        runner.join(timeout=20)
    assert not runner.is_alive()
    assert backfill.total.queued == history.valid == len(queued())
    client.close()


def test_while_many_entities_wait_for_delivery_it_waits(
    settings: Settings, history: History, engine: Engine, queued: Any
) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    client.zadd(engine.keys.due, {f"customer:busy{i}": 0 for i in range(5)})
    waited = threading.Event()
    backfill = Backfill(client, engine.keys, high_water=10**9, max_scheduled=5, full_wait=0.01,
                        on_progress=lambda _: waited.set() if backfill.waits else None)  # fmt: skip
    runner = threading.Thread(target=backfill.run, args=(history_files(history.files),))
    runner.start()
    try:
        wait_for(waited.is_set, 10, "the backfill to wait for the scheduled entities")
        assert queued() == []  # nothing pushed while the workers have that much to deliver
    finally:
        client.delete(engine.keys.due)  # the workers deliver them
        runner.join(timeout=20)
    assert not runner.is_alive()
    assert backfill.total.queued == history.valid == len(queued())
    client.close()


def test_envelopes_are_what_the_worker_reads(
    env: dict[str, str], history: History, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    _backfill(capsys, str(history.files[0]))
    raw = engine.redis.lindex(engine.keys.ingest_queue, 0)
    data = orjson.loads(raw)
    assert data["origin"] == "backfill" and data["source"] == "backfill"
    assert data["event"]["timestamp"] < "2024-02"  # the history's own time, not today's


def test_a_dry_run_needs_no_redis(
    env: dict[str, str], history: History, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    code, out, _ = _backfill(capsys, "--dry-run", "--diff-sample", "0", str(history.files[0]))
    assert code == 0 and "would queue " in out and "entities it would touch: " in out
