"""Posts ChartMogul (Actions) payloads to ChartMogul's Segment webhook, as Segment's destination
does (same JSON text, same headers), with the shared error taxonomy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from cmrelay.masking import mask_in_library_logs
from cmrelay.settings import Secret, Settings
from worker.delivery.contract import RequestGate
from worker.delivery.http import GATE_HOOKS, send_gated
from worker.delivery.webhook.payloads import encode_like_segment

# actions-core's request client sends exactly these two headers for a `json:` request.
HEADERS = {"user-agent": "Segment (Actions)", "content-type": "application/json"}
DEFAULT_TIMEOUT = 10.0  # actions-core DEFAULT_REQUEST_TIMEOUT = 10_000 ms


class WebhookClient:
    """Posts Actions payloads to CHARTMOGUL_WEBHOOK_URL; errors use the shared taxonomy."""

    def __init__(
        self,
        *,
        url: Secret,
        timeout: float = DEFAULT_TIMEOUT,
        gate: RequestGate | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url
        self._gate = gate
        # The URL is the credential: its path is the secret part, the host is ChartMogul's.
        path = httpx.URL(url.reveal()).path if url else ""
        self._secrets = (url.reveal(), path) if path not in ("", "/") else (url.reveal(),)
        for secret in self._secrets:
            mask_in_library_logs(secret)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            event_hooks=GATE_HOOKS,
        )

    def __repr__(self) -> str:
        return "WebhookClient(url=Secret('***'))"

    @classmethod
    def from_settings(cls, settings: Settings, gate: RequestGate | None = None) -> WebhookClient:
        """A client for the configured webhook URL."""
        return cls(
            url=settings.chartmogul_webhook_url or Secret(""),
            timeout=settings.request_timeout,
            gate=gate,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def send(self, payload: Mapping[str, Any]) -> None:
        """POST one payload; raise exactly one DeliveryError subclass on failure."""
        what = f"webhook POST ({payload.get('type', '?')})"
        body = encode_like_segment(payload)
        send_gated(
            self._gate,
            lambda: self._http.post(self._url.reveal(), content=body, headers=HEADERS),
            what=what,
            secrets=self._secrets,
        )
