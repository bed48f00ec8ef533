"""`cmrelay dlq` against the real private Redis, with entries made by the real DLQ API."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import time

import orjson
import pytest
import redis

from cmrelay.dlq.entry import REASON_EXPIRED, REASON_PERMANENT
from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.envelope import Envelope
from cmrelay.errors import PermanentDeliveryError
from cmrelay.settings import Settings
from cmrelay_cli.main import main
from tests.support.events import dead_letter, envelope
from tests.support.scripted import ScriptedDeliverer
from worker.pipeline.accept import accept_batch
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine

API_KEY = "sk_cli_test_0123456789"


@pytest.fixture
def dlq(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> DeadLetterQueue:
    """The DLQ the CLI sees: the environment points `load_settings` at the test's prefix."""
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("CMRELAY_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("CHARTMOGUL_API_KEY", API_KEY)
    monkeypatch.delenv("CMRELAY_CONFIG", raising=False)
    return DeadLetterQueue.from_settings(settings, engine.redis)


_add = dead_letter


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["dlq", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _lines(out: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in out.splitlines()]


def test_stats_counts_by_reason_http_status_error_class_and_age(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(dlq, "a")
    _add(dlq, "b", REASON_EXPIRED, status=503, age=7200)
    dlq.replay([_add(dlq, "c")])
    code, out, _ = _run(capsys, "stats")
    # the headline counts what still needs someone, not what was already replayed
    assert code == 0 and "dead letters: 2 still dead (1 replayed, 3 kept)" in out
    assert "retry window expired  1" in out
    assert "by HTTP status:" in out and "503  1" in out
    code, out, _ = _run(capsys, "stats", "--json")
    stats = orjson.loads(out)
    assert stats["dead"] == 2 and stats["by_status"] == {"dead": 2, "replayed": 1}
    assert stats["by_status_code"] == {"422": 2, "503": 1}
    assert stats["by_error_class"] == {"PermanentDeliveryError": 3}
    assert stats["by_age"]["<1h"] == 2 and stats["by_age"]["1h-24h"] == 1


def test_list_prints_a_table_and_json_lines_with_the_documented_names(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _add(dlq, "a", age=10)
    second = _add(dlq, "b", age=5)
    code, out, _ = _run(capsys, "list")
    header, *rows = out.splitlines()
    assert code == 0 and header.split()[:3] == ["id", "dead_lettered_at", "reason"]
    assert [row.split()[0] for row in rows] == [second, first]
    code, out, _ = _run(capsys, "list", "--json")
    records = _lines(out)
    assert [r["id"] for r in records] == [second, first]
    assert {"id", "reason", "status", "message_ids", "attempts", "last_error"} <= set(records[0])
    assert records[0]["message_ids"] == ["msg-b"] and records[0]["attempts"] == 2
    assert records[0]["status"] == "dead" and records[0]["status_code"] == 422


def test_list_filters_by_reason_status_entity_time_and_text(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _add(dlq, "old", REASON_EXPIRED, status=503, error="timed out", age=3 * 3600)
    new = _add(dlq, "new", age=60)
    dlq.replay([new])

    def ids(*flags: str) -> list[object]:
        code, out, err = _run(capsys, "list", "--json", *flags)
        assert code == 0, err
        return [r["id"] for r in _lines(out)]

    assert ids("--reason", REASON_EXPIRED) == [old]
    assert ids("--status", "503") == [old]
    assert ids("--status", "replayed") == [new]
    assert ids("--entity", "customer:new") == [new]
    assert ids("--since", "2h") == [new]
    until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 3600))
    assert ids("--until", until) == [old]
    assert ids("--text", "TIMED OUT") == [old]
    assert ids("--text", "nothing like this") == []


def test_bad_filters_are_one_line_and_exit_2(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    for flags in (["--since", "yesterday"], ["--status", "lost"], ["--limit", "0"]):
        code, out, err = _run(capsys, "list", *flags)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (flags, err)


def test_show_gives_events_plan_every_attempt_and_the_last_response_masked(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    entry_id = _add(dlq, "s", error=f"rejected key {API_KEY}", traits={"password": "hunter2"})
    code, out, _ = _run(capsys, "show", entry_id)
    assert code == 0 and f"id:            {entry_id}" in out
    assert '"userId": "s"' in out and "upsert_customer" in out
    assert "attempts (2 recorded):" in out and "503" in out and "Country is invalid" in out
    assert API_KEY not in out and "hunter2" not in out and "rejected key ***" in out
    code, out, _ = _run(capsys, "show", entry_id, "--json")
    view = orjson.loads(out)
    assert [a["status_code"] for a in view["history"]] == [503, 422]
    assert view["events"][0]["event"]["traits"]["password"] == "***"
    assert view["planned_operations"] == [{"op": "upsert_customer", "entity": "customer:s"}]
    code, _, err = _run(capsys, "show", "no-such-id")
    assert code == 1 and "no entry" in err


def test_replay_requeues_once_and_a_second_replay_changes_nothing(
    dlq: DeadLetterQueue, client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    entry_id = _add(dlq, "r")
    code, out, _ = _run(capsys, "replay", entry_id, "--dry-run")
    assert code == 0 and f"would replay {entry_id}" in out
    assert client.llen(dlq.keys.ingest_queue) == 0
    code, out, _ = _run(capsys, "replay", entry_id)
    assert code == 0 and f"replayed {entry_id}" in out
    code, out, _ = _run(capsys, "replay", entry_id, "--json")
    assert orjson.loads(out) == {
        "dry_run": False, "replayed": [], "skipped": [entry_id], "missing": [], "events": 0,
    }  # fmt: skip
    (queued,) = client.lrange(dlq.keys.ingest_queue, 0, -1)
    env = Envelope.from_bytes(queued)
    assert env.replay is True and env.message_id == "msg-r"


def test_replay_by_filter_or_all_and_unknown_ids(
    dlq: DeadLetterQueue, client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    expired = _add(dlq, "x", REASON_EXPIRED)
    permanent = _add(dlq, "y")
    code, out, _ = _run(capsys, "replay", "--reason", REASON_EXPIRED, "--json")
    assert orjson.loads(out)["replayed"] == [expired]
    code, out, _ = _run(capsys, "replay", "--all", "--json")
    assert orjson.loads(out)["replayed"] == [permanent]
    assert client.llen(dlq.keys.ingest_queue) == 2
    code, out, _ = _run(capsys, "replay", "gone")
    assert code == 1 and "missing gone" in out
    code, _, err = _run(capsys, "replay")
    assert code == 2 and "say what to replay" in err


def test_a_replay_shows_a_progress_bar_only_on_a_terminal(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(120):
        _add(dlq, f"p{n}")
    code, _, err = _run(capsys, "replay", "--dry-run", "--all")
    assert code == 0 and "[#" not in err  # captured stderr is not a TTY

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["dlq", "replay", "--all"]) == 0
    shown = terminal.getvalue()
    assert "replaying [" in shown and "120/120" in shown and "replayed 120 entries" in shown


def test_purge_refuses_without_a_terminal_or_yes(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_id = _add(dlq, "keep")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a TTY: "y" must not count
    code, _, err = _run(capsys, "purge", entry_id)
    assert code == 2 and "refusing to purge without --yes" in err
    assert dlq.get(entry_id) is not None


def test_purge_asks_on_a_terminal_and_obeys_the_answer(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_id = _add(dlq, "ask")

    class Keyboard(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Keyboard("n\n"))
    assert _run(capsys, "purge", entry_id)[0] == 2 and dlq.get(entry_id) is not None
    monkeypatch.setattr(sys, "stdin", Keyboard("y\n"))
    code, out, err = _run(capsys, "purge", entry_id)
    assert code == 0 and "Purge 1 dead letters" in err and "purged 1" in out
    assert dlq.get(entry_id) is None


def test_purge_by_age_and_filters_with_yes(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _add(dlq, "old", age=8 * 86400)
    old_expired = _add(dlq, "old2", REASON_EXPIRED, age=8 * 86400)
    fresh = _add(dlq, "fresh")
    code, out, _ = _run(capsys, "purge", "--reason", REASON_EXPIRED, "--older-than", "7d", "--yes")
    assert code == 0 and "purged 1" in out and dlq.get(old_expired) is None
    code, out, _ = _run(capsys, "purge", "--older-than", "7d", "--yes")
    assert "purged 1" in out and dlq.get(old) is None and dlq.get(fresh) is not None
    code, _, err = _run(capsys, "purge", "--yes")
    assert code == 2 and "say what to purge" in err and dlq.get(fresh) is not None
    assert _run(capsys, "purge", "--older-than", "soon", "--yes")[0] == 2


def test_an_entry_from_a_real_failed_delivery_replays_and_then_delivers(
    dlq: DeadLetterQueue,
    engine: Engine,
    client: redis.Redis,
    deliverer: ScriptedDeliverer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client.lpush(engine.keys.ingest_queue, envelope(user_id="real", message_id="real-1"))
    accept_batch(engine)

    def reject() -> None:
        raise PermanentDeliveryError("Unprocessable", status=422, body='{"error":"bad"}')

    deliverer.fail = reject
    assert deliver_entity(engine, "customer:real") == "dead_lettered"
    (row,) = _lines(_run(capsys, "list", "--json", "--status", "422")[1])
    assert row["message_ids"] == ["real-1"] and row["reason"] == REASON_PERMANENT
    deliverer.fail = None
    assert _run(capsys, "replay", str(row["id"]))[0] == 0
    assert _run(capsys, "replay", str(row["id"]))[0] == 0  # a second replay: skipped
    accept_batch(engine)
    assert deliver_entity(engine, "customer:real") == "delivered"
    delivered = [e["messageId"] for _, events, _ in deliverer.calls[1:] for e in events]
    assert delivered == ["real-1"]


def test_the_console_script_has_the_dlq_commands(dlq: DeadLetterQueue, settings: Settings) -> None:
    entry_id = _add(dlq, "script")
    done = _cli(settings, "list", "--json", capture_output=True)
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(line)["id"] for line in done.stdout.splitlines()] == [entry_id]


def test_secrets_in_settings_are_masked_in_list_output(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(dlq, "m", error=f"Authorization: Bearer {API_KEY}")
    _, out, _ = _run(capsys, "list", "--json")
    assert API_KEY not in out and "Bearer ***" in out


def _cli(settings: Settings, *argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": settings.redis_url, "CMRELAY_KEY_PREFIX": settings.key_prefix}
    return subprocess.run(
        [sys.executable, "-m", "cmrelay_cli", "dlq", *argv],
        env=env, text=True, timeout=60, check=False, **kw,  # type: ignore[call-overload]
    )  # fmt: skip


def test_a_real_terminal_gets_the_progress_bar_and_a_pipe_does_not(
    dlq: DeadLetterQueue, settings: Settings
) -> None:
    for n in range(60):
        _add(dlq, f"t{n}")
    piped = _cli(settings, "replay", "--all", "--dry-run", capture_output=True)
    assert piped.returncode == 0 and "[#" not in piped.stderr
    leader, follower = pty.openpty()
    try:
        done = _cli(settings, "replay", "--all", stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        shown = b""
        while chunk := _read(leader):
            shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0 and done.stdout.count("replayed ") == 60
    assert b"replaying [" in shown and b"60/60" in shown


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the terminal's other end is closed and drained
        return b""


def test_purge_with_no_terminal_on_stdin_refuses_for_real(
    dlq: DeadLetterQueue, settings: Settings
) -> None:
    entry_id = _add(dlq, "stay")
    done = _cli(settings, "purge", entry_id, stdin=subprocess.DEVNULL, capture_output=True)
    assert done.returncode == 2 and "refusing to purge without --yes" in done.stderr
    assert dlq.get(entry_id) is not None


HOSTILE = "\x1b]0;pwned\x07\x1b[2J\rroot\u202egnp.exe\u2066x\x9b31m\x7f\x00"
RAW_CONTROLS = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} - {"\n"}
BIDI = {chr(c) for c in [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


@pytest.mark.parametrize("command", ["list", "show"])
def test_text_output_escapes_terminal_controls_from_event_data(
    dlq: DeadLetterQueue, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    entry_id = _add(dlq, f"u{HOSTILE}", error=f"boom{HOSTILE}", traits={"name": HOSTILE})
    args = [entry_id] if command == "show" else []
    code, out, _ = _run(capsys, command, *args)
    assert code == 0
    assert not set(out) & (RAW_CONTROLS | BIDI), sorted(map(repr, set(out) & (RAW_CONTROLS | BIDI)))
    assert "\\x1b]0;pwned\\x07" in out and "\\u202e" in out and "\\r" in out
    # --json is for programs: the data comes through exactly, JSON-escaped.
    code, out, _ = _run(capsys, command, "--json", *args)
    record = orjson.loads(out.splitlines()[0])
    assert record["last_error"] == f"boom{HOSTILE}"
