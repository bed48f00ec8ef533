"""What every admin route needs: settings, the DLQ, the admin token (checked present and long
enough), the shared throttle on wrong tokens and the page's sessions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from admin.auth import Sessions
from admin.throttle import MIN_TOKEN_LENGTH, Throttle
from cmrelay.dlq.entry import DlqEntry
from cmrelay.dlq.follow import read_replayed_states
from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.errors import ConfigurationError
from cmrelay.settings import Secret, Settings


@dataclass(frozen=True)
class AdminContext:
    """Shared by the API and the web page of one admin app."""

    settings: Settings
    dlq: DeadLetterQueue
    token: Secret
    throttle: Throttle
    sessions: Sessions

    @classmethod
    def from_settings(cls, settings: Settings, dlq: DeadLetterQueue | None = None) -> AdminContext:
        """Refuse, in one line, to build an admin without ADMIN_TOKEN or with a short one."""
        token = settings.admin_token
        if not token:
            raise ConfigurationError("ADMIN_TOKEN is empty: set it to start the admin API")
        if len(token.reveal()) < MIN_TOKEN_LENGTH:
            raise ConfigurationError(
                f"ADMIN_TOKEN is too short to be secret: use at least {MIN_TOKEN_LENGTH} "
                "random characters (e.g. `openssl rand -hex 16`)"
            )
        dlq = dlq or DeadLetterQueue.from_settings(settings)
        throttle = Throttle(
            dlq.client, dlq.keys, settings.admin_max_failures, settings.admin_failure_window
        )
        return cls(settings, dlq, token, throttle, Sessions(dlq.client, dlq.keys, token))

    def views(
        self, entries: Sequence[DlqEntry], view: Callable[[DlqEntry, Settings], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Each entry's view (query.summary or query.detail); a replayed one gains "replay",
        what became of its events (cmrelay/dlq/follow.py), read in one pipelined call."""
        rows = [view(e, self.settings) for e in entries]
        states = read_replayed_states(self.dlq.client, self.dlq.keys, entries)
        for row, entry in zip(rows, entries, strict=True):
            if entry.id in states:
                row["replay"] = states[entry.id]
        return rows
