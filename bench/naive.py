"""The naive baseline for bench/delivery.py: one Celery task per event, each calling the
ChartMogul API directly with httpx. No coalescing, no shared rate limiter, no lease: what a
first integration usually looks like. Not part of the product.

    celery -A naive worker   (run from bench/, with NAIVE_* in the environment)
"""

from __future__ import annotations

import functools
import os
import random
from typing import Any

import httpx
import redis
from celery import Celery

app = Celery("naive", broker=os.environ.get("NAIVE_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_ignore_result=True)
DONE_KEY = "naive:done"
RETRIES_KEY = "naive:retries"


class BusyError(Exception):
    """429 / 5xx: try the event again later."""


@functools.cache
def _client() -> httpx.Client:
    return httpx.Client(
        base_url=os.environ["NAIVE_API_BASE"], auth=(os.environ["NAIVE_API_KEY"], ""),
        timeout=10, limits=httpx.Limits(max_connections=8),
    )  # fmt: skip


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["NAIVE_BROKER"])


def _call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    response = _client().request(method, path, **kwargs)
    if response.status_code == 429 or response.status_code >= 500:
        raise BusyError(str(response.status_code))
    return response


def _customer(external_id: str, ds: str, create: dict[str, Any]) -> dict[str, Any]:
    found = _call("GET", "/customers", params={"data_source_uuid": ds, "external_id": external_id})
    entries = found.json().get("entries", [])
    if entries:
        return dict(entries[0])
    created = _call("POST", "/customers", json={"data_source_uuid": ds, "external_id": external_id,
                                               **create})  # fmt: skip
    if created.status_code == 422:  # created meanwhile by another task: look again
        return _customer(external_id, ds, create)
    return dict(created.json())


def deliver(event: dict[str, Any]) -> None:
    """Group: customer upsert + custom attributes. Identify: customer lookup + contact upsert."""
    ds = os.environ["NAIVE_DATA_SOURCE"]
    traits = event["traits"]
    if event["type"] == "group":
        custom = [{"type": "String", "key": "plan", "value": traits["plan"]},
                  {"type": "Integer", "key": "seats", "value": traits["seats"]}]  # fmt: skip
        fields = {"name": traits["name"], "attributes": {"custom": custom}}
        customer = _customer(event["groupId"], ds, fields)
        if customer.get("name") != traits["name"]:
            _call("PATCH", f"/customers/{customer['uuid']}", json={"name": traits["name"]})
            _call("POST", f"/customers/{customer['uuid']}/attributes/custom",
                  json={"custom": custom})  # fmt: skip
        return
    customer = _customer(traits["company"]["id"], ds, {"name": traits["company"]["id"]})
    contact = {"first_name": traits["firstName"], "email": traits["email"],
               "external_id": event["userId"]}  # fmt: skip
    found = _call("GET", "/contacts", params={"email": traits["email"], "data_source_uuid": ds})
    entries = found.json().get("entries", [])
    if entries:
        _call("PATCH", f"/contacts/{entries[0]['uuid']}", json=contact)
    else:
        _call("POST", "/contacts", json={"customer_uuid": customer["uuid"],
                                         "data_source_uuid": ds, **contact})  # fmt: skip


@app.task(bind=True, name="naive.deliver_event", max_retries=None)  # type: ignore[misc]
def deliver_event(self: Any, event: dict[str, Any]) -> None:
    """One event, now; on 429/5xx retry in about a second (Celery countdown)."""
    try:
        deliver(event)
    except (BusyError, httpx.TransportError) as exc:
        _redis().incr(RETRIES_KEY)
        raise self.retry(countdown=0.5 + random.random(), exc=exc) from None
    _redis().incr(DONE_KEY)
