"""Small HTTP helpers the sandbox tests share."""

from __future__ import annotations

from typing import Any

import httpx


def create_customer(
    api: httpx.Client, source: str, external_id: str, **extra: Any
) -> dict[str, Any]:
    """POST /customers, asserting the 201; the customer JSON."""
    response = api.post(
        "/customers", json={"data_source_uuid": source, "external_id": external_id, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
