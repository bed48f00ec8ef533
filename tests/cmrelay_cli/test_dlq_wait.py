"""`cmrelay dlq replay --wait` and the admin API's "replay" field against the whole relay from
real parts: the ingest, Celery worker processes, Redis and the ChartMogul sandbox over HTTP.
Dead letters are made by a sandbox fault rule that refuses the customers' creates."""

from __future__ import annotations

import io
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from admin.server import uvicorn_config
from cmrelay.dlq.entry import DlqEntry
from cmrelay.dlq.store import DlqFilter
from cmrelay.redis_server import free_port
from cmrelay.settings import Secret
from cmrelay_cli.dlq import EXIT_DEAD_AGAIN, EXIT_TIMED_OUT
from cmrelay_cli.main import main
from tests.servers import serve_in_thread
from tests.support.processes import wait_for
from tests.support.sandbox_relay import SandboxRelay, group_event, sandbox_relay

TOKEN = "adm-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def relay(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRelay]:
    with sandbox_relay(redis_url, tmp_path_factory.mktemp("dlq-wait"), workers=1) as r:
        yield r


@pytest.fixture(autouse=True)
def cli_env(relay: SandboxRelay, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """`cmrelay` run in this process sees the relay's Redis and prefix; rules end cleared."""
    (tmp_path / "relay.toml").write_text("")
    monkeypatch.setenv("CMRELAY_CONFIG", str(tmp_path / "relay.toml"))
    monkeypatch.setenv("REDIS_URL", relay.settings.redis_url)
    monkeypatch.setenv("CMRELAY_KEY_PREFIX", relay.settings.key_prefix)
    yield
    relay.rules()


def _dead_letters(relay: SandboxRelay, n: int) -> tuple[str, list[DlqEntry]]:
    """n customers whose create the sandbox refuses (400), each dead-lettered once."""
    tag = f"w{uuid.uuid4().hex[:8]}"
    relay.rules({"match": tag, "method": "POST", "status": 400})
    relay.push(*(group_event(f"{tag}-{i}") for i in range(n)))
    entries = wait_for(
        lambda: (found := relay.dlq.list(DlqFilter(text=tag))) and len(found) == n and found,
        30,
        f"{n} dead letters",
    )
    return tag, entries


def _replay_wait(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["dlq", "replay", "--wait", *args])
    out, err = capsys.readouterr()
    return code, orjson.loads(out.splitlines()[-1]), err


def test_replay_wait_follows_the_events_to_delivery(
    relay: SandboxRelay, capsys: pytest.CaptureFixture[str]
) -> None:
    tag, _ = _dead_letters(relay, 3)
    relay.rules()  # the operator fixed the cause
    code, summary, err = _replay_wait(capsys, "--text", tag, "--timeout", "60")
    assert code == 0, err
    assert summary["entries"] == 3 and summary["events"] == 3 and not summary["timed_out"]
    assert summary["by_state"] == {
        "delivered": 3, "dead": 0, "mixed": 0, "waiting": 0, "unknown": 0,
    }  # fmt: skip
    assert summary["outcomes"] == {"delivered": 3}
    assert summary["dead_again"] == [] and summary["new_dead_letters"] == []
    assert len(relay.customers(*(f"{tag}-{i}" for i in range(3)))) == 3  # really there
    # not a terminal: plain progress lines, then the closing line
    assert "dlq replay --wait: " in err and "3/3 events" in err and "3 delivered" in err
    assert "[#" not in err


def test_a_replay_that_dies_again_exits_3_and_names_the_new_entries(
    relay: SandboxRelay, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tag, entries = _dead_letters(relay, 2)  # the rule stays: the replay fails again

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, summary, _ = _replay_wait(capsys, "--text", tag, "--timeout", "60", "--json")
    assert code == EXIT_DEAD_AGAIN
    old = {e.id for e in entries}
    new = {e.id for e in relay.dlq.list(DlqFilter(text=tag))} - old
    assert len(new) == 2 and summary["new_dead_letters"] == sorted(new)
    assert summary["dead_again"] == sorted(old) and summary["by_state"]["dead"] == 2
    assert summary["outcomes"] == {"dead_lettered": 2}
    shown = terminal.getvalue()
    assert "\r\x1b[K[" in shown and "2/2 events" in shown and "dead again 2" in shown


def test_the_admin_api_shows_what_became_of_each_replayed_entry(
    relay: SandboxRelay, capsys: pytest.CaptureFixture[str]
) -> None:
    tag, (first, second) = _dead_letters(relay, 2)
    relay.rules({"match": second.entity.partition(":")[2], "method": "POST", "status": 400})
    code, summary, _ = _replay_wait(capsys, first.id, "--timeout", "60")
    assert code == 0 and summary["by_state"]["delivered"] == 1
    code, summary, _ = _replay_wait(capsys, second.id, "--timeout", "60")
    assert code == EXIT_DEAD_AGAIN
    settings = replace(relay.settings, admin_token=Secret(TOKEN), log_level="WARNING")
    with serve_in_thread(uvicorn_config(settings, "127.0.0.1", free_port()), "admin") as url:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        rows = httpx.get(f"{url}/api/dlq", params={"text": tag}, headers=auth).json()["entries"]
        shown = httpx.get(f"{url}/api/dlq/{second.id}", headers=auth).json()
        with httpx.Client(base_url=url, timeout=10) as page:  # and the page, logged in
            assert page.post("/login", data={"token": TOKEN}).status_code == 303
            listed = page.get("/", params={"text": tag}).text
            entry_page = page.get(f"/entries/{second.id}").text
    by_id = {r["id"]: r for r in rows}
    assert by_id[first.id]["replay"] == {
        "state": "delivered", "counts": {"delivered": 1}, "dead_letter_ids": [],
    }  # fmt: skip
    assert by_id[second.id]["replay"]["state"] == "dead"
    assert by_id[second.id]["replay"]["dead_letter_ids"] == summary["new_dead_letters"]
    (new_id,) = summary["new_dead_letters"]
    assert "replay" not in by_id[new_id]  # still dead: nothing to follow
    assert shown["replay"] == by_id[second.id]["replay"]
    assert "dead-lettered again" in listed
    assert 'replay-delivered">delivered</span> (delivered 1)' in listed
    assert f'href="/entries/{new_id}"' in entry_page and "dead-lettered again" in entry_page


def test_replay_wait_gives_up_at_the_timeout_with_exit_4(
    relay: SandboxRelay, capsys: pytest.CaptureFixture[str]
) -> None:
    tag, _ = _dead_letters(relay, 1)
    relay.rules({"match": tag, "latency": 3.0})  # the replayed create answers slowly
    code, summary, err = _replay_wait(capsys, "--text", tag, "--timeout", "0.5")
    assert code == EXIT_TIMED_OUT and summary["timed_out"] is True
    assert summary["by_state"]["waiting"] == 1 and "timed out" in err


def test_wait_refuses_a_dry_run_and_a_relay_without_trails(
    relay: SandboxRelay, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["dlq", "replay", "--all", "--dry-run", "--wait"]) == 2
    assert "not with --dry-run" in capsys.readouterr().err
    monkeypatch.setenv("TRACE_RETENTION", "0")
    assert main(["dlq", "replay", "--all", "--wait"]) == 2
    assert "TRACE_RETENTION" in capsys.readouterr().err
