"""`cmrelay resync`: a customer edited behind the relay's back is put back to the relay's view,
under its lease, against the sandbox over HTTP and the session's real Redis."""

from __future__ import annotations

import argparse
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cmrelay_cli import resync
from cmrelay_cli.main import build_parser
from sandbox.runner import SandboxServer
from tests.support.sandbox_relay import API_KEY
from worker.pipeline.engine import Engine


@pytest.fixture
def engine(api_engine: Engine) -> Engine:
    return api_engine


def _group(cid: str, seats: int) -> dict[str, Any]:
    return {"type": "group", "groupId": cid, "messageId": uuid.uuid4().hex,
            "timestamp": datetime.now(UTC).isoformat(),
            "traits": {"name": cid, "seats": seats}}  # fmt: skip


def _run(*argv: str) -> tuple[int, str]:
    args = build_parser().parse_args(["resync", *argv])
    out = io.StringIO()
    code = resync.run(args, out)
    return code, out.getvalue()


def _seats(sandbox: SandboxServer, cid: str) -> Any:
    state = httpx.get(f"{sandbox.control_url}/state").json()
    [customer] = [c for c in state["customers"] if c["external_id"] == cid]
    return customer["attributes"]["custom"]["seats"]


def test_resync_puts_back_a_customer_edited_behind_the_relays_back(
    engine: Engine, sandbox: SandboxServer
) -> None:
    engine.deliverer.deliver("customer:rs1", [_group("rs1", 5)], {})
    [customer] = httpx.get(f"{sandbox.control_url}/state").json()["customers"]
    edit = {"attributes": {"custom": {"seats": 99}}}
    url = f"{sandbox.base_url}/customers/{customer['uuid']}"
    httpx.patch(url, json=edit, auth=(API_KEY, "")).raise_for_status()
    # The relay trusts what ChartMogul confirmed: the same value again costs nothing...
    assert engine.deliverer.deliver("customer:rs1", [_group("rs1", 5)], {}).calls == 0
    assert _seats(sandbox, "rs1") == 99
    # ...until a resync re-reads ChartMogul and sends the relay's view again.
    code, out = _run("customer:rs1")
    assert code == 0 and out.startswith("customer:rs1: resynced with ")
    assert _seats(sandbox, "rs1") == 5
    assert engine.redis.zscore(engine.keys.due, "customer:rs1") is not None  # handed back


def test_resync_all_covers_every_held_customer_and_busy_ones_are_reported(
    engine: Engine, sandbox: SandboxServer
) -> None:
    for cid in ("ra", "rb"):
        engine.deliverer.deliver(f"customer:{cid}", [_group(cid, 1)], {})
    engine.redis.set(engine.keys.lease("customer:rb"), "someone-else", px=10_000)
    code, out = _run("--all")
    assert code == 1
    assert "customer:ra: resynced with" in out and "customer:rb: busy" in out


@pytest.mark.parametrize("argv", [(), ("--all", "customer:x"), ("acme",)])
def test_bad_arguments_are_one_line_and_exit_2(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(entities=[a for a in argv if a != "--all"], all="--all" in argv)
    assert resync.run(args, io.StringIO()) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_resync_since_takes_only_customers_confirmed_within_the_age(
    engine: Engine, sandbox: SandboxServer
) -> None:
    for cid in ("new1", "old1"):
        engine.deliverer.deliver(f"customer:{cid}", [_group(cid, 1)], {})
    old_key = engine.keys.confirmed("old1")
    engine.redis.pexpire(old_key, int((engine.settings.confirmed_state_ttl - 7200) * 1000))
    code, out = _run("--since", "1h")
    assert code == 0 and "customer:new1: resynced" in out and "old1" not in out
    assert _run("--since", "soon")[0] == 2
