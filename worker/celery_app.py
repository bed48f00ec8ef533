"""The Celery glue, all of it: the app, its one task, the scheduler bootstep and `cmrelay worker`.

`celery -A worker.celery_app worker` works as is: the app below is built from load_settings(), and
the scheduler loop (worker.pipeline.scheduler) starts with every worker through SchedulerStep.
Settings are chosen so that no accepted event is ever lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from celery import Celery, bootsteps, signals

from cmrelay.keys import Keys
from cmrelay.logs import configure_logging
from cmrelay.redis_conn import celery_broker, connect
from cmrelay.settings import Settings, load_settings
from cmrelay.status import room_problem
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine
from worker.pipeline.heartbeat import Heartbeat
from worker.pipeline.scheduler import Queued, Scheduler

log = logging.getLogger(__name__)

DELIVER_TASK = "cmrelay.deliver"
SOFT_SHUTDOWN_SECONDS = 10.0  # warm shutdown: finish deliveries, hand unstarted work back
DEFAULT_POOL = ["--pool", "threads"]  # HTTP-bound work: prefork's throughput at 1/8 the memory
DEFAULT_CONCURRENCY = ["--concurrency", "8"]
_ENGINE_LOCK = threading.Lock()
# kombu's Redis transport keeps one list per priority step (0, 3, 6, 9) and pops them in that
# order, 0 (the default) first: backfill tasks in the last list never stand before live ones.
BACKFILL_PRIORITY = 9
# Free memory Redis must have before a worker starts: kombu's and the scheduler's first writes
# need a few kB, and a Redis that has only just room for a probe refuses them a moment later.
START_HEADROOM = 1_000_000


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app for these settings, with the deliver task and the scheduler bootstep."""
    broker, transport_options = celery_broker(settings.broker_url)
    app = Celery("cmrelay", broker=broker, set_as_current=False)
    # kombu's Redis transport reads visibility_timeout from three places and keeps the shortest
    # it finds, so all three get the one value.
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

    @app.task(name=DELIVER_TASK, shared=False, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def deliver(entity: str) -> str:
        return deliver_entity(engine_for(app), entity)

    app.steps["worker"].add(SchedulerStep)
    signals.worker_init.connect(_wait_for_writable_redis, sender=None, weak=False,
                                dispatch_uid="cmrelay-wait-writable")  # fmt: skip
    return app


def _wait_for_writable_redis(sender: Any = None, **kwargs: Any) -> None:
    """worker_init: block until Redis has room for writes. Started while Redis is full, kombu's
    first write raises OutOfMemoryError, which Celery takes as unrecoverable and exits (and a
    restart policy turns that into a crash loop); waiting here lets it start once Redis has room.
    """
    settings: Settings | None = getattr(sender.app, "relay_settings", None)
    if settings is None:
        return  # a Celery app that is not ours
    client = connect(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=2.0)
    keys, delay, logged = Keys(settings.key_prefix), 0.5, -float("inf")
    try:
        while (problem := room_problem(client, keys, START_HEADROOM)) is not None:
            if time.monotonic() - logged > 60:  # once a minute, not once a try
                log.warning("worker start waits: %s; retrying every few seconds", problem)
                logged = time.monotonic()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    finally:
        client.close()


def engine_for(app: Any) -> Engine:
    """The one Engine of this process for this app (Redis pool, scripts, gate, deliverer)."""
    with _ENGINE_LOCK:
        engine: Engine | None = getattr(app, "relay_engine", None)
        if engine is None:
            engine = app.relay_engine = Engine.from_settings(app.relay_settings)
        return engine


def _log_as_json(settings: Settings) -> None:
    """A setup_logging receiver: Celery then leaves logging alone and we install JSON logs.
    celeryd_init comes earlier, before Celery's first warning, so it configures them too."""

    def configure(**kwargs: Any) -> None:
        configure_logging(settings)

    # dispatch_uid: one receiver per process, however many apps the tests build.
    signals.setup_logging.connect(configure, weak=False, dispatch_uid="cmrelay-json-logs")
    signals.celeryd_init.connect(configure, weak=False, dispatch_uid="cmrelay-json-logs-init")


def publish_deliveries(app: Any, entities: Sequence[str], backfill: bool = False) -> None:
    """Publish one deliver(entity) task each, on one producer, without args in the headers
    (argsrepr would put customer ids in every message header and costs ~35 % of publish time).
    Backfill tasks go out at BACKFILL_PRIORITY: workers take every live task before them."""
    task = app.tasks[DELIVER_TASK]
    priority = BACKFILL_PRIORITY if backfill else None
    with app.producer_or_acquire() as producer:
        for entity in entities:
            task.apply_async(
                (entity,), producer=producer, argsrepr="", kwargsrepr="", priority=priority
            )


def queued_deliveries(app: Any) -> Queued:
    """Deliver tasks waiting in the broker (a passive queue declare, any kombu transport). On
    Redis, kombu keeps each priority in its own list: the backfill list is counted apart."""
    queue = app.conf.task_default_queue
    with app.connection_or_acquire() as conn:
        channel = conn.channel()
        try:
            total = int(channel.queue_declare(queue, passive=True).message_count)
            by_priority = getattr(channel, "_q_for_pri", None)
            if by_priority is None:  # no per-priority lists (RabbitMQ): count every task as live
                return Queued(total, 0)
            backfill = int(channel.client.llen(by_priority(queue, BACKFILL_PRIORITY)))
            return Queued(total - backfill, backfill)
        except conn.channel_errors:
            return Queued(0, 0)  # the queue does not exist yet: nothing is waiting
        finally:
            channel.close()


class SchedulerStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """A worker bootstep: `celery -A worker.celery_app worker` runs the scheduler too."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat: Heartbeat | None = None

    def start(self, worker: Any) -> None:
        app = worker.app
        engine = engine_for(app)
        engine.policy  # noqa: B018 - read MAPPING_FILE once, now: a bad one stops the start
        engine.deliverer  # noqa: B018 - build it now: a bad CMRELAY_DELIVERER stops the start
        scheduler = Scheduler(
            engine,
            lambda due, backfill: publish_deliveries(app, list(due), backfill),
            lambda: queued_deliveries(app),
        )
        self._thread = threading.Thread(
            target=scheduler.run, args=(self._stop,), name="cmrelay-scheduler", daemon=True
        )
        self._thread.start()
        self._heartbeat = Heartbeat(
            engine.redis, engine.keys, engine.settings.heartbeat_ttl, lambda: scheduler.last_tick
        )
        self._heartbeat.start()
        log.info("cmrelay scheduler started")

    def stop(self, worker: Any) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    shutdown = stop


def _has(args: Sequence[str], *names: str) -> bool:
    return any(a == n or a.startswith(n + "=") for a in args for n in names)


def worker_argv(celery_args: Sequence[str], log_level: str = "INFO") -> list[str]:
    """Celery's argv: ours as defaults, anything the operator passed wins."""
    argv = ["worker", *celery_args]
    if not _has(celery_args, "--loglevel", "-l"):
        argv += ["--loglevel", log_level]
    if not _has(celery_args, "--pool", "-P"):
        argv += DEFAULT_POOL
    if not _has(celery_args, "--concurrency", "-c"):
        argv += DEFAULT_CONCURRENCY
    return argv


def run_worker(celery_args: Sequence[str]) -> int:
    """`cmrelay worker`: fail with one line on bad settings (ConfigurationError), else run."""
    settings = load_settings()
    engine = Engine.from_settings(settings)
    try:
        engine.deliverer  # noqa: B018 - a bad MAPPING_FILE or deliverer stops the start here
    finally:
        engine.close()
    # --quiet: no ASCII banner on stdout; every line the worker writes is a JSON log record.
    app.worker_main(["--quiet", *worker_argv(celery_args, settings.log_level)])
    return 0


app = create_celery_app(load_settings())
