from __future__ import annotations

import pytest

from cmrelay.envelope import Envelope, EnvelopeError, source_for_write_key


def test_round_trip_keeps_every_field() -> None:
    env = Envelope(
        source=source_for_write_key("wk"),
        origin="tracking-api",
        received_at="2026-01-01T00:00:00.000Z",
        event={"type": "identify", "messageId": "m1", "userId": "u1"},
    )
    assert Envelope.from_bytes(env.to_bytes()) == env
    assert env.message_id == "m1"


def test_source_does_not_reveal_the_write_key() -> None:
    source = source_for_write_key("super-secret-key")
    assert "super-secret-key" not in source
    assert source == source_for_write_key("super-secret-key")
    assert source != source_for_write_key("other")


@pytest.mark.parametrize(
    "raw",
    [b"nope", b"[]", b'{"v": 99, "event": {"messageId": "m"}}', b'{"v": 1, "event": {}}'],
)
def test_foreign_bytes_are_refused(raw: bytes) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_bytes(raw)
