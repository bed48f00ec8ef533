from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from cmrelay.logs import configure_logging
from cmrelay.settings import load_settings


def test_log_lines_are_json_with_extra_fields_and_secrets_masked(tmp_path: Path) -> None:
    cfg = tmp_path / "relay.toml"
    cfg.write_text("")
    settings = load_settings(
        {
            "CMRELAY_CONFIG": str(cfg),
            "CHARTMOGUL_API_KEY": "sk_live_abcdef123",
            "SEGMENT_WRITE_KEYS": "writekey-1",
        }
    )
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    log = logging.getLogger("test.logs")
    log.info(
        "delivered with key %s", "sk_live_abcdef123", extra={"message_id": "m1", "entity": "c:1"}
    )
    log.warning("write key writekey-1 rejected")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message_id"] == "m1"
    assert lines[0]["entity"] == "c:1"
    assert lines[0]["level"] == "info"
    assert lines[0]["msg"] == "delivered with key ***"
    assert "writekey-1" not in stream.getvalue()
    assert "sk_live_abcdef123" not in stream.getvalue()
