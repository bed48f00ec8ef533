"""Starts the scheduler loop in a thread with each Celery worker and stops it on shutdown."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps

from worker.heartbeat import Heartbeat
from worker.scheduler import Scheduler
from worker.tasks import engine_for

log = logging.getLogger(__name__)


class SchedulerStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """A worker bootstep: `celery -A worker.celery_app worker` runs the scheduler too."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat: Heartbeat | None = None

    def start(self, worker: Any) -> None:
        from worker.celery_app import publish_deliveries, queued_deliveries

        app = worker.app
        engine = engine_for(app)
        engine.policy  # noqa: B018 - read MAPPING_FILE once, now: a bad one stops the start
        engine.deliverer  # noqa: B018 - build it now: a bad CMRELAY_DELIVERER stops the start
        scheduler = Scheduler(
            engine,
            lambda due: publish_deliveries(app, list(due)),
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
