from __future__ import annotations

from pathlib import Path

import pytest

from cmrelay.errors import ConfigurationError
from cmrelay.settings import Secret, load_settings


def test_defaults_without_environment(tmp_path: Path) -> None:
    settings = load_settings({"CMRELAY_CONFIG": str(_file(tmp_path, ""))})
    assert settings.ingest_port == 8080
    assert settings.broker_url == settings.redis_url
    assert settings.chartmogul_api_base == "https://api.chartmogul.com/v1"
    assert settings.delivery_mode == "api"


def test_broker_defaults_to_redis_url_and_can_be_overridden(tmp_path: Path) -> None:
    cfg = str(_file(tmp_path, ""))
    only_redis = load_settings({"CMRELAY_CONFIG": cfg, "REDIS_URL": "redis://r:1/2"})
    assert only_redis.broker_url == "redis://r:1/2"
    both = load_settings(
        {"CMRELAY_CONFIG": cfg, "REDIS_URL": "redis://r:1/2", "CELERY_BROKER_URL": "amqp://x//"}
    )
    assert both.broker_url == "amqp://x//"


def test_write_keys_are_split_and_hidden(tmp_path: Path) -> None:
    settings = load_settings(
        {"CMRELAY_CONFIG": str(_file(tmp_path, "")), "SEGMENT_WRITE_KEYS": " k1, k2 ,,"}
    )
    assert [k.reveal() for k in settings.segment_write_keys] == ["k1", "k2"]
    assert "k1" not in repr(settings)


def test_api_key_never_in_repr(tmp_path: Path) -> None:
    settings = load_settings(
        {"CMRELAY_CONFIG": str(_file(tmp_path, "")), "CHARTMOGUL_API_KEY": "sk_live_very_secret"}
    )
    assert "very_secret" not in repr(settings)
    assert "very_secret" not in str(settings.chartmogul_api_key)
    assert settings.chartmogul_api_key == Secret("sk_live_very_secret")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("INGEST_PORT", "eighty", "INGEST_PORT: not a TCP port"),
        ("INGEST_PORT", "70000", "not a TCP port"),
        ("REDIS_URL", "http://x", "REDIS_URL"),
        ("DELIVERY_MODE", "carrier-pigeon", "expected one of api, webhook"),
        ("COALESCE_WINDOW", "-1", "COALESCE_WINDOW"),
        ("CHARTMOGUL_API_BASE", "ftp://x", "CHARTMOGUL_API_BASE"),
    ],
)
def test_bad_setting_is_one_clear_line(
    tmp_path: Path, name: str, value: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({"CMRELAY_CONFIG": str(_file(tmp_path, "")), name: value})
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_file_settings_are_overridden_by_environment(tmp_path: Path) -> None:
    cfg = _file(tmp_path, '[relay]\ningest_port = 9000\ncompany_creation = "group"\n')
    settings = load_settings({"CMRELAY_CONFIG": str(cfg), "INGEST_PORT": "9001"})
    assert settings.ingest_port == 9001
    assert settings.company_creation == "group"


def test_secret_in_file_is_refused(tmp_path: Path) -> None:
    cfg = _file(tmp_path, '[relay]\nchartmogul_api_key = "oops"\n')
    with pytest.raises(ConfigurationError, match="is a secret"):
        load_settings({"CMRELAY_CONFIG": str(cfg)})


def test_unknown_file_setting_is_refused(tmp_path: Path) -> None:
    cfg = _file(tmp_path, "[relay]\ningest_prot = 1\n")
    with pytest.raises(ConfigurationError, match="unknown setting 'ingest_prot'"):
        load_settings({"CMRELAY_CONFIG": str(cfg)})


def test_ingest_refuses_to_start_without_keys_unless_embedded(tmp_path: Path) -> None:
    cfg = str(_file(tmp_path, ""))
    with pytest.raises(ConfigurationError, match="SEGMENT_WRITE_KEYS"):
        load_settings({"CMRELAY_CONFIG": cfg}).require_ingest_keys()
    embedded = load_settings({"CMRELAY_CONFIG": cfg, "CMRELAY_EMBEDDED": "1"})
    embedded.require_ingest_keys()
    assert embedded.auth_disabled


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    return path
