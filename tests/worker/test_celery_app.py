"""The Celery app's no-loss settings, the publish path, and `cmrelay worker` start-up checks."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import redis

from cmrelay.settings import Settings
from cmrelay_cli.main import main
from worker.celery_app import create_celery_app, publish_deliveries, queued_deliveries, worker_argv
from worker.pipeline.scheduler import Queued


def test_no_loss_settings_and_one_visibility_timeout_everywhere(settings: Settings) -> None:
    conf = create_celery_app(settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 4
    assert conf.result_backend_transport_options["visibility_timeout"] == 4
    assert conf.visibility_timeout == 4
    assert conf.broker_connection_retry_on_startup and conf.task_ignore_result
    assert conf.worker_soft_shutdown_timeout > 0 and conf.worker_enable_soft_shutdown_on_idle
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_default_queue == f"{settings.key_prefix}.deliver"


def test_published_tasks_carry_no_argument_repr(settings: Settings, client: redis.Redis) -> None:
    app = create_celery_app(settings)
    publish_deliveries(app, ["customer:secret-person@example.com"])
    (raw,) = client.lrange(f"{settings.key_prefix}.deliver", 0, -1)
    message = orjson.loads(raw)
    assert message["headers"]["argsrepr"] == ""
    assert message["headers"]["task"] == "cmrelay.deliver"


def test_worker_defaults_to_threads_and_respects_overrides() -> None:
    assert worker_argv([], "WARNING") == [
        "worker", "--loglevel", "WARNING", "--pool", "threads", "--concurrency", "8",
    ]  # fmt: skip
    custom = ["-P", "prefork", "-c", "2", "-l", "DEBUG"]
    assert worker_argv(custom) == ["worker", *custom]
    assert worker_argv(["--pool=solo"])[-2:] == ["--concurrency", "8"]


def test_worker_refuses_to_start_without_delivery_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    redis_url: str,
) -> None:  # fmt: skip
    config = tmp_path / "relay.toml"
    config.write_text("")
    monkeypatch.setenv("CMRELAY_CONFIG", str(config))
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("CHARTMOGUL_API_KEY", raising=False)
    monkeypatch.delenv("CMRELAY_DELIVERER", raising=False)
    assert main(["worker"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "CHARTMOGUL_API_KEY" in err
    monkeypatch.setenv("CMRELAY_DELIVERER", "no.such.module:build")
    assert main(["worker"]) == 2
    assert "CMRELAY_DELIVERER" in capsys.readouterr().err


def test_queued_deliveries_counts_the_broker_queue(settings: Settings) -> None:
    app = create_celery_app(settings)
    publish_deliveries(app, ["customer:a", "customer:b"])
    publish_deliveries(app, ["customer:c"], backfill=True)
    assert queued_deliveries(app) == Queued(live=2, backfill=1)  # kombu's priority lists apart


def test_queued_deliveries_is_zero_for_an_empty_queue(settings: Settings) -> None:
    assert queued_deliveries(create_celery_app(settings)) == Queued(0, 0)
