"""The one place secrets are masked: log lines, error texts, DLQ views, library log records.

Masking is defence in depth: code should not put a secret into a message in the first place.
Every configured secret is replaced by `***`, and so is the value after an `Authorization`-style
scheme word (bearer, basic, token), which catches credentials the relay was never told about.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cmrelay.settings import Secret, Settings

MASK = "***"
EXCERPT_CHARS = 2000  # error texts and bodies shown to on-call staff are cut here
# Shorter "secrets" (test keys such as "k") would mask every k in every log line.
MIN_SECRET_CHARS = 4
_AUTH_VALUE = re.compile(r"(?i)(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")
# Keys whose values are credentials whatever the configured secrets are (trait names included).
_SENSITIVE_KEY = re.compile(r"(?i)pass(word)?|secret|token|api[_-]?key|authorization|write_?key")


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, as plain strings."""
    found: list[Secret] = list(settings.segment_write_keys)
    for value in (
        settings.segment_shared_secret,
        settings.chartmogul_api_key,
        settings.chartmogul_webhook_url,
        settings.admin_token,
    ):
        if value is not None:
            found.append(value)
    return [s.reveal() for s in found if s]


class Masker:
    """Masks a fixed set of secrets (longest first, so one inside another goes whole)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {s for s in secrets if len(s) >= MIN_SECRET_CHARS}
        self._secrets = sorted(unique, key=len, reverse=True)

    @classmethod
    def from_settings(cls, settings: Settings, extra: Iterable[str] = ()) -> Masker:
        """A masker for every secret of these settings, plus `extra`."""
        return cls([*secret_values(settings), *extra])

    def text(self, text: str) -> str:
        """`text` with every secret and every auth header value masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return _AUTH_VALUE.sub(rf"\1 {MASK}", text)

    def excerpt(self, text: str) -> str:
        """Masked, then cut to EXCERPT_CHARS (for error texts and response bodies)."""
        return self.text(text)[:EXCERPT_CHARS]

    def tree(self, value: Any) -> Any:
        """A copy of a JSON-like value: strings masked, values of credential-named keys hidden."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                k: MASK if _SENSITIVE_KEY.search(str(k)) and v else self.tree(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.tree(v) for v in value]
        return value


class _LibraryLogFilter(logging.Filter):
    """Rewrites library log records (httpx logs every request URL at INFO) without secrets."""

    def __init__(self) -> None:
        super().__init__()
        self.masker = Masker(())
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        self._secrets.add(secret)
        self.masker = Masker(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            cleaned = self.masker.text(message)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        return True


_library_filter = _LibraryLogFilter()
logging.getLogger("httpx").addFilter(_library_filter)


def mask_in_library_logs(secret: str) -> None:
    """Keep `secret` (e.g. the webhook URL's path) out of httpx's own log lines."""
    if secret:
        _library_filter.add(secret)
