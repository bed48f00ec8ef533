"""The relay's error hierarchy, named by what the caller must do about each error."""

from __future__ import annotations


class RelayError(Exception):
    """Base of every error the relay raises on purpose."""


class ConfigurationError(RelayError):
    """A setting is wrong or missing: stop at start-up with this one-line message."""


class DeliveryError(RelayError):
    """A call to ChartMogul (API or webhook) did not succeed."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        # Kept short: the DLQ shows it to on-call staff, and bodies can be large.
        self.body = body[:2000]

    @property
    def error_class(self) -> str:
        """A stable name for metrics, logs and the DLQ."""
        return type(self).__name__


class RetryableDeliveryError(DeliveryError):
    """Try again later (timeouts, connection errors, 408, 423, 429, most 5xx)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (400, 404, 422, other 4xx): dead-letter at once."""


class DeliveryConfigurationError(DeliveryError):
    """The credentials or the data source are wrong (401, 403): pause all delivery, keep events."""


class InvalidQueryError(RelayError):
    """An operator's request (CLI flags, admin API input) is malformed: say why, change nothing."""
