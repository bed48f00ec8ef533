from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from cmrelay.settings import Secret
from ingest.auth import basic_username, check_signature, check_write_key, js_stringify
from ingest.errors import Unauthorized

SECRET = Secret("s3cret")


def _sign(data: bytes) -> str:
    return hmac.new(b"s3cret", data, hashlib.sha1).hexdigest()


def test_basic_username_is_the_write_key_and_the_colon_is_kept() -> None:
    header = "Basic " + base64.b64encode(b"abc123:").decode()
    assert header == "Basic YWJjMTIzOg=="  # Segment's documented example
    assert basic_username(header) == "abc123"
    assert basic_username("Bearer token") is None
    assert basic_username(None) is None
    with pytest.raises(Unauthorized):
        basic_username("Basic %%%")


def test_write_keys_are_checked_against_every_configured_key() -> None:
    keys = (Secret("one"), Secret("two"))
    assert check_write_key("two", keys) == "two"
    for bad in ("three", "", None, "tw"):
        with pytest.raises(Unauthorized):
            check_write_key(bad, keys)


def test_classic_webhook_signature_covers_the_body() -> None:
    body = b'{"type":"identify","userId":"u1"}'
    check_signature(_sign(body), body, json.loads(body), SECRET)
    with pytest.raises(Unauthorized):
        check_signature(_sign(body + b" "), body, json.loads(body), SECRET)
    with pytest.raises(Unauthorized):
        check_signature(None, body, json.loads(body), SECRET)


def test_signature_is_checked_on_json_stringify_even_if_the_body_was_reformatted() -> None:
    document = {"type": "identify", "userId": "ü", "traits": {"n": 1.0, "s": "a\nb"}}
    stringified = b'{"type":"identify","userId":"\xc3\xbc","traits":{"n":1,"s":"a\\nb"}}'
    assert js_stringify(document) == stringified
    pretty = json.dumps(document, indent=2).encode()
    check_signature(_sign(stringified), pretty, document, SECRET)


def test_actions_batch_signature_covers_only_the_first_event() -> None:
    events = [{"type": "identify", "userId": "u1"}, {"type": "group", "groupId": "g"}]
    signature = _sign(js_stringify(events[0]))
    check_signature(signature, json.dumps(events).encode(), events, SECRET)
    with pytest.raises(Unauthorized):
        check_signature(_sign(js_stringify(events[1])), b"", events, SECRET)
    with pytest.raises(Unauthorized):
        check_signature(signature, b"[]", [], SECRET)
