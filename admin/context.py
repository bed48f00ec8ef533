"""What every admin route needs: settings, the DLQ and the admin token (checked present)."""

from __future__ import annotations

from dataclasses import dataclass

from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.errors import ConfigurationError
from cmrelay.settings import Secret, Settings


@dataclass(frozen=True)
class AdminContext:
    """Shared by the API and the web page of one admin app."""

    settings: Settings
    dlq: DeadLetterQueue
    token: Secret

    @classmethod
    def from_settings(cls, settings: Settings, dlq: DeadLetterQueue | None = None) -> AdminContext:
        """Refuse, in one line, to build an admin without ADMIN_TOKEN."""
        if not settings.admin_token:
            raise ConfigurationError("ADMIN_TOKEN is empty: set it to start the admin API")
        return cls(settings, dlq or DeadLetterQueue.from_settings(settings), settings.admin_token)
