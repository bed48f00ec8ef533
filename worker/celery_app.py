"""The relay's Celery app: settings chosen so that no accepted event is ever lost.

`celery -A worker.celery_app worker` works as is: the app below is built from load_settings(),
and the scheduler loop starts with every worker (worker/bootstep.py).
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from cmrelay.logs import configure_logging
from cmrelay.redis_conn import celery_broker
from config.settings import Settings, load_settings

DELIVER_TASK = "cmrelay.deliver"
SOFT_SHUTDOWN_SECONDS = 10.0  # warm shutdown: finish deliveries, hand unstarted work back


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app for these settings, with the deliver task and the scheduler bootstep."""
    from worker.bootstep import SchedulerStep
    from worker.tasks import register_tasks

    broker, transport_options = celery_broker(settings.broker_url)
    app = Celery("cmrelay", broker=broker, set_as_current=False)
    # One value in all three places: kombu keeps the shortest it finds (delivery.md §1.1).
    visibility = int(settings.visibility_timeout)
    app.conf.update(
        # Celery lets the environment's CELERY_BROKER_URL win over broker_url, untranslated;
        # the read/write URLs are used for every connection and win over it.
        broker_read_url=broker,
        broker_write_url=broker,
        broker_transport_options={"visibility_timeout": visibility, **transport_options},
        result_backend_transport_options={"visibility_timeout": visibility},
        visibility_timeout=visibility,
        # Ack after the task ran, and requeue if the process running it dies: deliver is
        # idempotent (lease + drained-on-commit mailbox), so running twice is safe, losing is not.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # reserve one task per thread; the rest stay with others
        worker_cancel_long_running_tasks_on_connection_loss=True,  # Celery 6 default
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,  # nothing reads results; the due set is the state
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        worker_soft_shutdown_timeout=SOFT_SHUTDOWN_SECONDS,
        worker_enable_soft_shutdown_on_idle=True,
        # One queue per relay prefix, so relays sharing a broker never take each other's work.
        task_default_queue=f"{settings.key_prefix}.deliver",
        worker_hijack_root_logger=False,
    )
    app.relay_settings = settings
    _log_as_json(settings)
    register_tasks(app)
    app.steps["worker"].add(SchedulerStep)
    return app


def _log_as_json(settings: Settings) -> None:
    """A setup_logging receiver: Celery then leaves logging alone and we install JSON logs.
    celeryd_init comes earlier, before Celery's first warning, so it configures them too."""

    def configure(**kwargs: Any) -> None:
        configure_logging(settings)

    # dispatch_uid: one receiver per process, however many apps the tests build.
    signals.setup_logging.connect(configure, weak=False, dispatch_uid="cmrelay-json-logs")
    signals.celeryd_init.connect(configure, weak=False, dispatch_uid="cmrelay-json-logs-init")


def publish_deliveries(app: Any, entities: list[str] | tuple[str, ...]) -> None:
    """Publish one deliver(entity) task each, on one producer, without args in the headers
    (argsrepr is PII and about 35 % of publish time, performance.md §2.b)."""
    task = app.tasks[DELIVER_TASK]
    with app.producer_or_acquire() as producer:
        for entity in entities:
            task.apply_async((entity,), producer=producer, argsrepr="", kwargsrepr="")


def queued_deliveries(app: Any) -> int:
    """Deliver tasks waiting in the broker (any kombu transport: a passive queue declare)."""
    with app.connection_or_acquire() as conn:
        channel = conn.channel()
        try:
            declared = channel.queue_declare(app.conf.task_default_queue, passive=True)
            return int(declared.message_count)
        except conn.channel_errors:
            return 0  # the queue does not exist yet: nothing is waiting
        finally:
            channel.close()


app = create_celery_app(load_settings())
