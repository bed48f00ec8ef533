"""ChartMogul REST API client for the workers: one pooled httpx client, one error taxonomy.

Every request passes through the RequestGate (the engine's shared rate limiter) and every failure
leaves as exactly one of RetryableDeliveryError, PermanentDeliveryError or
DeliveryConfigurationError. The API key is sent only in the Authorization header and is scrubbed
from anything that could be logged.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from cmrelay.errors import PermanentDeliveryError
from cmrelay.masking import Masker
from cmrelay.settings import Secret, Settings
from worker.delivery.contract import RequestGate
from worker.delivery.http import GATE_HOOKS, send_gated
from worker.mapping.model import CustomAttribute

log = logging.getLogger(__name__)

USER_AGENT = "chartmogul-relay/0.1"
# ChartMogul's largest page; contacts of one customer rarely need a second page.
PAGE_SIZE = 200
# A customer with more than this many contact pages is not one we created; stop rather than loop.
MAX_PAGES = 25
_EXTERNAL_ID_EXISTS = "already exists"


class ExternalIdTakenError(PermanentDeliveryError):
    """A create met a customer that already holds this external id (maybe merged away)."""


def _names_external_id(exc: PermanentDeliveryError) -> bool:
    """True for ChartMogul's 422 "The external ID for this customer already exists"."""
    body = exc.body.lower()
    return exc.status == 422 and _EXTERNAL_ID_EXISTS in body and "external" in body


def holds_identity(entry: Mapping[str, Any], external_id: str, data_source_uuid: str) -> bool:
    """True when a customer holds this external id in this data source, as its own main id or
    in the lists a merge leaves behind (`external_ids`, `data_source_uuids`)."""
    if entry.get("external_id") == external_id and entry.get("data_source_uuid") in (
        None,
        data_source_uuid,
    ):
        return True
    ids = entry.get("external_ids") or ()
    sources = entry.get("data_source_uuids") or ()
    return external_id in ids and (not data_source_uuid or data_source_uuid in sources)


def _segment(value: str) -> str:
    """A path segment that cannot climb out of the intended path."""
    return quote(value, safe="")


class ChartMogulClient:
    """The operations the workers need, each one request where the API allows."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: Secret,
        data_source_uuid: str,
        timeout: float = 10.0,
        gate: RequestGate | None = None,
        transport: httpx.BaseTransport | None = None,
        attribute_source: str = "Segment",
    ) -> None:
        key = api_key.reveal()
        self._secrets = (key, base64.b64encode(f"{key}:".encode()).decode())
        self.data_source_uuid = data_source_uuid
        self.attribute_source = attribute_source  # shown next to each custom attribute
        self._gate = gate
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            auth=httpx.BasicAuth(key, ""),
            timeout=httpx.Timeout(timeout),
            # ChartMogul answers 503 above 20 parallel connections; the gate enforces the global
            # cap, this only bounds one process.
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
            headers={"user-agent": USER_AGENT, "accept": "application/json"},
            transport=transport,
            follow_redirects=False,
            event_hooks=GATE_HOOKS,
        )

    def __repr__(self) -> str:
        return f"ChartMogulClient(base_url={str(self._http.base_url)!r}, api_key=Secret('***'))"

    @classmethod
    def from_settings(cls, settings: Settings, gate: RequestGate | None = None) -> ChartMogulClient:
        """A client configured from the relay's settings."""
        return cls(
            base_url=settings.chartmogul_api_base,
            api_key=settings.chartmogul_api_key or Secret(""),
            data_source_uuid=settings.chartmogul_data_source_uuid,
            attribute_source=settings.attribute_source,
            timeout=settings.request_timeout,
            gate=gate,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request through the gate; return the decoded JSON body or raise one error."""
        what = f"chartmogul {method} /{path.split('?', maxsplit=1)[0]}"
        response = send_gated(
            self._gate,
            lambda: self._http.request(method, path, json=json, params=params),
            what=what,
            secrets=self._secrets,
        )
        return self._decode(response, what)

    def _decode(self, response: httpx.Response, what: str) -> Any:
        if response.status_code == 204 or not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):  # every endpoint we call answers with an object
            raise PermanentDeliveryError(
                f"{what}: HTTP {response.status_code} with a body that is not a JSON object",
                status=response.status_code,
                body=Masker(self._secrets).text(response.text),
            )
        return body

    # -- operations ----------------------------------------------------------------------------

    def ping(self) -> None:
        """Check the key and, when configured, that the data source exists (one request)."""
        if self.data_source_uuid:
            self._request("GET", f"data_sources/{_segment(self.data_source_uuid)}")
        else:
            self._request("GET", "ping")

    def find_customer(self, external_id: str) -> dict[str, Any] | None:
        """The customer holding this external id in our data source (merged ones too), or None."""
        body = self._request(
            "GET",
            "customers",
            params={"external_id": external_id, "data_source_uuid": self.data_source_uuid},
        )
        for entry in body.get("entries") or ():
            # The filter is the server's job; checking again guards against a lax proxy/sandbox.
            if holds_identity(entry, external_id, self.data_source_uuid):
                return dict(entry)
        return None

    def find_merged(self, external_id: str, emails: Sequence[str]) -> dict[str, Any] | None:
        """The customer holding this id after a merge, when the filtered lookup does not list
        it: a search by each known email, then a bounded walk over the customers."""
        for email in dict.fromkeys(e for e in emails if e):
            try:
                body = self._request("GET", "customers/search", params={"email": email})
            except PermanentDeliveryError as exc:
                if exc.status != 404:  # 404: nobody has that email
                    raise
                continue
            for entry in body.get("entries") or ():
                if holds_identity(entry, external_id, self.data_source_uuid):
                    return dict(entry)
        params = {"per_page": str(PAGE_SIZE)}
        for _ in range(MAX_PAGES):
            body = self._request("GET", "customers", params=params)
            for entry in body.get("entries") or ():
                if holds_identity(entry, external_id, self.data_source_uuid):
                    return dict(entry)
            cursor = body.get("cursor")
            if not body.get("has_more") or not cursor:
                break
            params["cursor"] = str(cursor)
        return None

    def create_customer(
        self, external_id: str, standard: Mapping[str, Any], custom: Sequence[CustomAttribute]
    ) -> dict[str, Any]:
        """Create a customer; ExternalIdTakenError when one already holds the external id."""
        payload: dict[str, Any] = {
            **standard,
            "data_source_uuid": self.data_source_uuid,
            "external_id": external_id,
        }
        if custom:
            payload["attributes"] = {"custom": [self._typed(attr) for attr in custom]}
        try:
            return dict(self._request("POST", "customers", json=payload))
        except PermanentDeliveryError as exc:
            if not _names_external_id(exc):
                raise
            raise ExternalIdTakenError(exc.message, status=exc.status, body=exc.body) from None

    def update_customer(
        self, uuid: str, standard: Mapping[str, Any], custom: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Update standard fields and values of existing custom keys in one PATCH."""
        payload: dict[str, Any] = dict(standard)
        if custom:
            payload["attributes"] = {"custom": dict(custom)}
        return dict(self._request("PATCH", f"customers/{_segment(uuid)}", json=payload))

    def delete_custom_attributes(self, uuid: str, keys: Sequence[str]) -> dict[str, Any]:
        """Remove custom attributes from a customer; unknown keys are no error."""
        body = {"custom": list(keys)}
        return dict(
            self._request("DELETE", f"customers/{_segment(uuid)}/attributes/custom", json=body)
        )

    def merge_customers(self, source_uuid: str, target_uuid: str) -> None:
        """Merge one customer into another (ChartMogul answers 202 and finishes on its own)."""
        body = {"from": {"customer_uuid": source_uuid}, "into": {"customer_uuid": target_uuid}}
        self._request("POST", "customers/merges", json=body)

    def add_custom_attributes(self, uuid: str, attrs: Sequence[CustomAttribute]) -> dict[str, Any]:
        """Define and set attributes new to the customer (POST); returns {"custom": {...}}."""
        body = {"custom": [self._typed(attr) for attr in attrs]}
        return dict(
            self._request("POST", f"customers/{_segment(uuid)}/attributes/custom", json=body)
        )

    def update_custom_attributes(self, uuid: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Set values of custom attributes that already exist (PUT)."""
        body = {"custom": dict(values)}
        return dict(
            self._request("PUT", f"customers/{_segment(uuid)}/attributes/custom", json=body)
        )

    def get_attributes(self, uuid: str) -> dict[str, Any]:
        """All attributes of a customer: {"tags": [...], "custom": {...}, ...}."""
        return dict(self._request("GET", f"customers/{_segment(uuid)}/attributes"))

    def find_contacts(
        self, *, customer_uuid: str | None = None, email: str | None = None
    ) -> list[dict[str, Any]]:
        """Contacts in our data source, filtered by customer and/or email (all pages)."""
        params: dict[str, str] = {
            "data_source_uuid": self.data_source_uuid,
            "per_page": str(PAGE_SIZE),
        }
        if customer_uuid:
            params["customer_uuid"] = customer_uuid
        if email:
            params["email"] = email
        found: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            body = self._request("GET", "contacts", params=params)
            found.extend(dict(entry) for entry in body.get("entries") or ())
            cursor = body.get("cursor")
            if not body.get("has_more") or not cursor:
                break
            params["cursor"] = str(cursor)
        return found

    def create_contact(
        self,
        customer_uuid: str,
        standard: Mapping[str, Any],
        custom: Mapping[str, Any],
        external_id: str | None,
    ) -> dict[str, Any]:
        """Create a contact on a customer (custom fields travel as a [{key, value}] list)."""
        payload: dict[str, Any] = {
            **standard,
            "customer_uuid": customer_uuid,
            "data_source_uuid": self.data_source_uuid,
        }
        if external_id:
            payload["external_id"] = external_id
        if custom:
            payload["custom"] = _untyped(custom)
        return dict(self._request("POST", "contacts", json=payload))

    def _typed(self, attr: CustomAttribute) -> dict[str, Any]:
        typed = {"type": attr.type, "key": attr.key, "value": attr.value}
        return {**typed, "source": self.attribute_source} if self.attribute_source else typed

    def update_contact(
        self, uuid: str, standard: Mapping[str, Any], custom: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Update a contact's standard fields and custom fields (PATCH)."""
        payload: dict[str, Any] = dict(standard)
        if custom:
            payload["custom"] = _untyped(custom)
        return dict(self._request("PATCH", f"contacts/{_segment(uuid)}", json=payload))


def _untyped(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": value} for key, value in values.items()]


_process_clients: dict[int, ChartMogulClient] = {}


def process_client(settings: Settings, gate: RequestGate | None = None) -> ChartMogulClient:
    """The one pooled client of this process (rebuilt after a fork: sockets must not be shared)."""
    pid = os.getpid()
    client = _process_clients.get(pid)
    if client is None:
        _process_clients.clear()  # clients inherited from the parent belong to the parent
        client = _process_clients[pid] = ChartMogulClient.from_settings(settings, gate)
    return client


def discard_process_client(client: ChartMogulClient) -> None:
    """Close a client from process_client and forget it, so the next call builds a fresh one."""
    client.close()
    for pid, cached in list(_process_clients.items()):
        if cached is client:
            del _process_clients[pid]
