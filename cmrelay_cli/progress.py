"""A status line for long CLI commands: redrawn in place on a terminal, plain lines elsewhere.

Hand-written rather than rich or tqdm: one line of text is all the commands show, and neither
library is a runtime dependency of the relay (rich only arrives with the dev tools).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

MAX_REDRAWS_PER_SECOND = 5.0


class StatusLine:
    """Shows the latest text: on a TTY at most MAX_REDRAWS_PER_SECOND times a second, redrawn
    in place; otherwise (logs, pipes, CI) as a plain `prefix: text` line every `every` s."""

    def __init__(
        self,
        stream: TextIO,
        prefix: str,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        quiet_at_start: bool = False,
    ) -> None:
        self.stream, self.prefix, self.clock = stream, prefix, clock
        self.tty = stream.isatty()
        self.every = 1.0 / MAX_REDRAWS_PER_SECOND if self.tty else every
        # quiet_at_start: the first line waits one interval too (nothing to say at once).
        self._last: float | None = clock() if quiet_at_start else None
        self._drawn = False

    def show(self, text: str, *, final: bool = False) -> bool:
        """Write the text if it is time (always when final); True if written."""
        now = self.clock()
        if not final and self._last is not None and now - self._last < self.every:
            return False
        self._last = now
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self._drawn = True
        else:
            self.stream.write(f"{self.prefix}: {text}\n")
        self.stream.flush()
        return True

    def close(self) -> None:
        """End a redrawn line so that later output starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def bar(done: int, total: int, width: int = 24) -> str:
    """`[#####-------]` for done out of total (full when total is 0)."""
    filled = width if total <= 0 else min(width, width * done // total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def duration(seconds: float | None) -> str:
    """A short duration such as 45s, 3m05s or 2h10m; `?` when unknown."""
    if seconds is None:
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def eta(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far; None before anything is done."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0, total - done) * elapsed / done
