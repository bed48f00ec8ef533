"""The Celery task: thin, it only hands the entity to worker.deliver."""

from __future__ import annotations

import threading
from typing import Any

from worker.deliver import deliver_entity
from worker.engine import Engine

_engines: dict[int, Engine] = {}
_lock = threading.Lock()


def engine_for(app: Any) -> Engine:
    """The one Engine of this process for this app (Redis pool, scripts, deliverer)."""
    with _lock:
        engine = _engines.get(id(app))
        if engine is None:
            engine = Engine.from_settings(app.relay_settings)
            _engines[id(app)] = engine
        return engine


def register_tasks(app: Any) -> None:
    """Attach `cmrelay.deliver` to the app."""

    @app.task(name="cmrelay.deliver", shared=False, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def deliver(entity: str) -> str:
        return deliver_entity(engine_for(app), entity)
