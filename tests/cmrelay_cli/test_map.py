"""`cmrelay map` end to end: real parser, real settings, and --diff against a real HTTP server."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cmrelay_cli.main import build_parser, main
from tests.doubles.http_recorder import Recorded, RecordingServer, Reply

EVENT = {
    "type": "group",
    "messageId": "m-1",
    "timestamp": "2024-01-01T00:00:00Z",
    "userId": "u1",
    "groupId": "g1",
    "traits": {"name": "Initech", "plan": "pro", "address": {"country": "Atlantis"}},
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "CHARTMOGUL_API_KEY",
        "CHARTMOGUL_DATA_SOURCE_UUID",
        "MAPPING_FILE",
        "COMPANY_CREATION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CMRELAY_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")


def test_map_is_registered_as_a_subcommand() -> None:
    args = build_parser().parse_args(["map", "--json", "x.json"])
    assert args.file == "x.json"
    assert args.json


def test_map_prints_operations_without_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(EVENT))
    assert main(["map", str(path), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["route"]["customer_external_id"] == "g1"
    assert [op["op"] for op in result["operations"]] == ["upsert_customer", "set_custom_attributes"]
    assert result["dropped"] == [
        {"field": "address.country", "reason": "not an ISO 3166 country name or code"}
    ]


def test_map_reads_a_batch_from_stdin_and_prints_a_readable_list(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = {"batch": [EVENT, {"type": "identify", "anonymousId": "a", "messageId": "m-2"}]}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(batch)))
    assert main(["map", "--company-creation", "group"]) == 0
    out = capsys.readouterr().out
    assert "group m-1: deliver to customer 'g1'" in out
    assert "identify m-2: skipped (identify with only an anonymousId" in out
    assert "dropped address.country" in out


def test_bad_input_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("{not json"))
    assert main(["map"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cmrelay map: cannot read an event")
    assert "Traceback" not in err


def test_diff_without_credentials_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(EVENT))
    assert main(["map", str(path), "--diff"]) == 2
    assert "CHARTMOGUL_API_KEY" in capsys.readouterr().err


def test_diff_reads_state_and_shows_only_changes(
    server: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def chartmogul(record: Recorded) -> Reply:
        if record.path == "/v1/customers":
            entry = {
                "uuid": "cus_1",
                "external_id": "g1",
                "data_source_uuid": "ds_1",
                "name": "Initech",
                "company": "Initech",
                "attributes": {"custom": {"plan": "basic"}},
            }
            return Reply(200, {"entries": [entry], "has_more": False, "cursor": None})
        return Reply(200, {"entries": [], "has_more": False, "cursor": None})

    server.responder = chartmogul
    monkeypatch.setenv("CHARTMOGUL_API_KEY", "k")
    monkeypatch.setenv("CHARTMOGUL_DATA_SOURCE_UUID", "ds_1")
    monkeypatch.setenv("CHARTMOGUL_API_BASE", server.url + "/v1")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(EVENT))
    assert main(["map", str(path), "--diff", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["operations"] == [
        {
            "op": "update_customer",
            "uuid": "cus_1",
            "changes": {"custom.plan": {"from": "basic", "to": "pro"}},
        }
    ]
    assert [r.method for r in server.requests] == ["GET", "GET"]


def test_diff_marks_what_chartmogul_did_not_keep_last_time(
    server: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    redis_url: str,
) -> None:
    import redis

    from cmrelay.keys import Keys
    from worker.delivery.api.held import Held, HeldPart
    from worker.delivery.api.held_store import HeldStore

    def chartmogul(record: Recorded) -> Reply:
        entry = {"uuid": "cus_1", "external_id": "g1", "data_source_uuid": "ds_1",
                 "name": "Initech", "company": "Initech", "city": "Austin", "state": None,
                 "attributes": {"custom": {"plan": "pro"}}}  # fmt: skip
        entries = [entry] if record.path == "/v1/customers" else []
        return Reply(200, {"entries": entries, "has_more": False, "cursor": None})

    server.responder = chartmogul
    prefix = "mapnk"
    held = Held(HeldPart("cus_1", {"name": "Initech"}, {"plan": "pro"}, {"state": "Texas"}))
    HeldStore(redis.Redis.from_url(redis_url), Keys(prefix), 60).save("g1", held)
    for name, value in {"CHARTMOGUL_API_KEY": "k", "CHARTMOGUL_DATA_SOURCE_UUID": "ds_1",
                        "CHARTMOGUL_API_BASE": server.url + "/v1", "REDIS_URL": redis_url,
                        "CMRELAY_KEY_PREFIX": prefix}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    event = {**EVENT, "traits": {"name": "Initech", "plan": "pro",
                                 "address": {"city": "Austin", "state": "Texas"}}}  # fmt: skip
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    assert main(["map", str(path), "--diff", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    (op,) = result["operations"]
    assert op["changes"] == {"state": {"from": None, "to": "Texas"}}
    assert op["not_kept_by_chartmogul"] == ["state"]
    assert main(["map", str(path), "--diff"]) == 0
    assert "ChartMogul did not keep state last time" in capsys.readouterr().out
