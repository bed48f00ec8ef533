"""The one masking module: every secret and auth value hidden, wherever text leaves the relay."""

from __future__ import annotations

import logging

import pytest

from cmrelay.masking import EXCERPT_CHARS, MASK, Masker, mask_in_library_logs, secret_values
from cmrelay.settings import Secret, Settings


def _settings() -> Settings:
    return Settings(
        chartmogul_api_key=Secret("sk_live_123"),
        segment_write_keys=(Secret("wk-one-1234"), Secret("wk-two-5678")),
        admin_token=Secret("admin-token-abcdefgh"),
        chartmogul_webhook_url=Secret("https://hooks.example.com/segment/t0ken-path"),
    )


def test_every_configured_secret_is_collected() -> None:
    assert set(secret_values(_settings())) == {
        "sk_live_123", "wk-one-1234", "wk-two-5678", "admin-token-abcdefgh",
        "https://hooks.example.com/segment/t0ken-path",
    }  # fmt: skip


def test_secrets_and_auth_header_values_are_masked() -> None:
    text = Masker.from_settings(_settings()).text(
        "key sk_live_123 rejected; Authorization: Basic c2tfbGl2ZV8xMjM6 via wk-two-5678"
    )
    assert "sk_live_123" not in text and "c2tfbGl2ZV8xMjM6" not in text
    assert "wk-two-5678" not in text and text.count(MASK) == 3


def test_a_secret_inside_a_longer_one_is_masked_whole() -> None:
    masker = Masker(["abcd", "xxabcdxx"])
    assert masker.text("1 xxabcdxx 2 abcd") == f"1 {MASK} 2 {MASK}"


def test_too_short_secrets_are_not_used_to_mask() -> None:
    assert Masker(["k"]).text("kick") == "kick"


def test_an_excerpt_is_masked_then_cut() -> None:
    masker = Masker(["sk_live_123"])
    out = masker.excerpt("sk_live_123 " + "x" * 5000)
    assert out.startswith(MASK) and len(out) == EXCERPT_CHARS


def test_a_tree_hides_credential_named_keys_and_masks_every_string() -> None:
    masker = Masker.from_settings(_settings())
    view = masker.tree(
        {"traits": {"password": "hunter2", "api_key": "", "note": "uses sk_live_123"},
         "list": ["wk-one-1234", 3]}
    )  # fmt: skip
    assert view == {
        "traits": {"password": MASK, "api_key": "", "note": f"uses {MASK}"},
        "list": [MASK, 3],
    }


def test_library_log_records_lose_registered_secrets(caplog: pytest.LogCaptureFixture) -> None:
    mask_in_library_logs("/segment/t0ken-path")
    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info("HTTP Request: POST %s", "https://h/segment/t0ken-path")
    assert "t0ken-path" not in caplog.text and MASK in caplog.text
