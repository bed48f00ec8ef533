"""sentinel:// URLs: parsing, and the translation to kombu's form for Celery."""

from __future__ import annotations

import pytest

from cmrelay.errors import ConfigurationError
from cmrelay.redis_conn import SentinelUrl, celery_broker, parse_sentinel_url
from cmrelay.settings import Settings, load_settings
from worker.celery_app import create_celery_app


def test_a_sentinel_url_names_hosts_service_db_and_password() -> None:
    parsed = parse_sentinel_url("sentinel://:p%40ss@s1:26380,s2/mymaster/3")
    assert parsed == SentinelUrl((("s1", 26380), ("s2", 26379)), "mymaster", 3, None, "p@ss")


@pytest.mark.parametrize(
    "url", ["sentinel://s1:26379", "sentinel://s1:x/m/0", "sentinel://s1/m/zero", "sentinel:///m"]
)
def test_a_malformed_sentinel_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_sentinel_url(url)


def test_a_malformed_sentinel_url_stops_the_start_naming_the_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"^REDIS_URL: sentinel URL"):
        load_settings({"REDIS_URL": "sentinel://s1:26379", "CMRELAY_CONFIG": "/dev/null"})


def test_celery_gets_kombus_sentinel_form_and_the_master_name() -> None:
    broker, options = celery_broker("sentinel://:pw@s1:1,s2:2/mymaster/1")
    assert broker == "sentinel://:pw@s1:1/1;sentinel://:pw@s2:2/1"
    assert options == {"master_name": "mymaster"}
    assert celery_broker("amqp://guest@h//") == ("amqp://guest@h//", {})


def test_the_celery_app_uses_the_translated_url_even_when_the_environment_sets_one() -> None:
    app = create_celery_app(Settings(celery_broker_url="sentinel://s1:1/mymaster/0"))
    assert app.conf.broker_read_url == app.conf.broker_write_url == "sentinel://s1:1/0"
    assert app.conf.broker_transport_options["master_name"] == "mymaster"
    assert app.conf.broker_transport_options["visibility_timeout"] == 300
