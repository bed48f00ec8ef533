"""A gate wrapper that counts the calls one delivery makes (the calls-per-event metric)."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext

from worker.delivery.contract import RequestGate


class CountingGate:
    """Wraps the engine's gate and counts the responses seen by the current thread."""

    def __init__(self, inner: RequestGate | None) -> None:
        self._inner = inner
        self._local = threading.local()

    def acquire(self) -> AbstractContextManager[None]:
        """The inner gate's slot (or nothing, without a gate)."""
        return self._inner.acquire() if self._inner is not None else nullcontext()

    def observe(self, status: int | None, retry_after: float | None) -> None:
        """Count one call, then feed the inner gate."""
        self._local.calls = self.calls + 1
        if self._inner is not None:
            self._inner.observe(status, retry_after)

    @property
    def calls(self) -> int:
        """Calls made by this thread since the last reset."""
        return int(getattr(self._local, "calls", 0))

    def reset(self) -> None:
        """Start counting one delivery."""
        self._local.calls = 0
