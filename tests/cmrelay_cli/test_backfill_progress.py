"""Backfill progress: the ETA from two snapshots, the bar and plain lines, and the workers' count
of backfilled events that reached an outcome (real Redis, the API deliverer, the sandbox)."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from cmrelay.envelope import Envelope
from cmrelay.metrics import RelayCollector
from cmrelay_cli.backfill_progress import ProgressLine, Snapshot, describe, duration, eta
from cmrelay_cli.main import main
from ingest.backfill import Tally
from tests.support.events import envelope
from tests.support.history import write_history
from worker.pipeline.accept import accept_batch
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine


def test_eta_is_the_slower_of_reading_and_delivering() -> None:
    start = Snapshot(0.0, bytes_total=1000)
    # 10 s in: 400 of 1,000 bytes read (60 bytes/s left 15 s), 800 queued so 2,000 projected,
    # 500 delivered at 50/s: 1,500 left take 30 s.
    now = Snapshot(10.0, read=900, queued=800, delivered=500, bytes_done=400, bytes_total=1000)
    assert eta(start, now) == pytest.approx(30.0)
    fast = Snapshot(10.0, read=900, queued=800, delivered=1900, bytes_done=400, bytes_total=1000)
    assert eta(start, fast) == pytest.approx(15.0)  # delivery keeps up: reading decides
    done = Snapshot(10.0, read=900, queued=800, delivered=800, bytes_done=1000, bytes_total=1000)
    assert eta(start, done) == 0.0
    assert eta(start, Snapshot(10.0, queued=5, bytes_done=1000, bytes_total=1000)) is None
    assert duration(3725) == "1h02m" and duration(185) == "3m05s" and duration(None) == "?"
    assert describe(start, now).endswith("90 events/s  ETA 30s")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal_plain_lines_elsewhere() -> None:
    tally = Tally(read=1200, queued=1000, rejected=3, bytes_read=50, to_read=200)
    delivered = iter([7, 907, 907, 907, 907])
    plain, terminal = io.StringIO(), _Terminal()
    for out in (plain, terminal):
        line = ProgressLine(out, every=0.0, delivered=lambda: next(delivered))
        line(tally)
        line.message("h.ndjson:3: not valid JSON")
        line(tally, final=True)
    assert plain.getvalue().startswith(
        "backfill progress: read 1200  queued 1000  rejected 3  ignored 0  delivered 900  "
    )
    assert "events/s  ETA " in plain.getvalue()
    assert plain.getvalue().count("\n") == 2  # the final summary is printed by the command
    assert plain.getvalue().endswith("\nh.ndjson:3: not valid JSON\n")
    assert "\r\x1b[Kh.ndjson:3: not valid JSON\n\r\x1b[K[######" in terminal.getvalue()
    assert "\r\x1b[K[######------------------]  25%  read 1200  " in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")  # the final redraw ends the line


def _deliver_all(engine: Engine) -> int:
    """Deliver every mailbox; returns how many envelopes were in them."""
    boxes = list(engine.redis.scan_iter(engine.keys.mailbox("*")))
    total = sum(int(engine.redis.llen(k)) for k in boxes)
    prefix = engine.keys.mailbox("")
    for key in boxes:
        entity = key.decode()[len(prefix) :]
        while engine.redis.llen(key):
            assert deliver_entity(engine, entity) in ("delivered", "empty")
    return total


def test_backfilled_events_reaching_an_outcome_are_counted_delivered(
    api_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = write_history(tmp_path / "h", files=2, events_per_file=40, users=6, companies=3)
    assert main(["backfill", str(tmp_path / "h")]) == 0
    while accept_batch(api_engine):
        pass
    live = envelope("group", user_id="live-admin", group_id="live-co", traits={"seats": 2})
    api_engine.redis.lpush(api_engine.keys.ingest_queue, live)
    accept_batch(api_engine)
    in_mailboxes = _deliver_all(api_engine)
    backfilled = in_mailboxes - 1  # the live event is not counted
    assert 0 < backfilled <= history.valid
    counters = api_engine.redis.hgetall(api_engine.keys.counters)
    assert int(counters[b"backfill_delivered"]) == backfilled
    assert Envelope.from_bytes(live).origin != "backfill"

    capsys.readouterr()
    assert main(["backfill", "status", "--sample", "0.1"]) == 0
    out = capsys.readouterr().out
    assert f"total: read {history.valid + history.ignored + len(history.bad)}  " in out
    assert f"delivered {backfilled}  " in out and "ETA" in out

    families = {f.name: f for f in RelayCollector(api_engine.redis, api_engine.keys).collect()}
    stages = {s.labels["stage"]: s.value for s in families["cmrelay_backfill_events"].samples
              if s.name.endswith("_total")}  # fmt: skip
    assert stages["delivered"] == backfilled and stages["queued"] == history.valid
    accept = families["cmrelay_accept_events"].samples
    assert not any(s.labels["outcome"] == "backfill_delivered" for s in accept)


def test_dry_run_shows_what_would_change_for_a_sample_as_map_diff_does(
    api_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "h.ndjson"
    old = {"type": "group", "groupId": "dd-acme", "userId": "dd-admin", "messageId": "dd-1",
           "timestamp": "2024-01-01T00:00:00Z", "traits": {"name": "Acme", "seats": 3}}  # fmt: skip
    new = {**old, "messageId": "dd-2", "groupId": "dd-beta", "traits": {"name": "Beta"}}
    history.write_text(f"{orjson.dumps(old).decode()}\n{orjson.dumps(new).decode()}\n")
    live = envelope("group", user_id="dd-admin", group_id="dd-acme", traits={"name": "Acme"},
                    timestamp="2023-12-01T00:00:00Z")  # fmt: skip
    api_engine.redis.lpush(api_engine.keys.ingest_queue, live)
    accept_batch(api_engine)
    _deliver_all(api_engine)  # dd-acme is in ChartMogul without its seats, dd-beta is not
    capsys.readouterr()

    assert main(["backfill", "--dry-run", "--diff-sample", "1", str(history)]) == 0
    out = capsys.readouterr().out
    assert "what would change for 1 sampled entities (against ChartMogul's current state" in out
    assert "customer:dd-acme:\n  group dd-1: deliver to customer 'dd-acme'\n" in out
    assert "add_custom_attributes" in out and "create_customer" not in out  # a diff, not a plan
    assert "customer:dd-beta:" not in out  # outside the sample of 1
    assert "customer:dd-beta  1 events" in out
