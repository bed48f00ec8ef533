"""The API deliverer's customer custom attributes: fitted to known types, created, written.

ChartMogul fixes a key's type account-wide when it is first created. A write that meets a type
the relay has not learned yet is refused (422); here that costs the one attribute, never the
customer, its other attributes or its contacts (worker/attr_writes.py does the narrowing).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cmrelay.errors import PermanentDeliveryError
from worker.delivery.api.cache import RelayCache
from worker.delivery.api.client import ChartMogulClient
from worker.delivery.api.record import DeliveryRecord, op
from worker.delivery.api.refusal import attribute_refusal
from worker.delivery.api.writes import real_types, write_attributes
from worker.mapping import AttrType, CustomAttribute, CustomerDelta, Dropped, coerce
from worker.mapping.operations import typed_attributes

log = logging.getLogger(__name__)


def fit_types(
    custom: Mapping[str, CustomAttribute], types: Mapping[str, AttrType], run: DeliveryRecord
) -> dict[str, CustomAttribute]:
    """Each attribute in the type ChartMogul already holds for its key; unfit ones dropped."""
    out: dict[str, CustomAttribute] = {}
    for key, attr in custom.items():
        existing = types.get(key)
        fitted = coerce(attr, existing) if existing else attr
        if isinstance(fitted, Dropped):
            run.drop([fitted])
        else:
            out[key] = fitted
    return out


def create_customer(
    client: ChartMogulClient,
    cache: RelayCache,
    delta: CustomerDelta,
    custom: Mapping[str, CustomAttribute],
) -> tuple[dict[str, Any], bool]:
    """Create the customer with its attributes or, if they are refused, without them (True).

    The refusal's lesson (the real type of a key) is kept in the type cache for the retry.
    """
    sent = list(custom.values())
    try:
        return client.create_customer(delta.external_id, delta.standard, sent), False
    except PermanentDeliveryError as exc:
        named = attribute_refusal(exc, custom.keys()) if custom else None
        if named is None:
            raise
        log.info("customer create refused for custom attributes; creating it without them")
        cache.learn(real_types(named, sent))
        return client.create_customer(delta.external_id, delta.standard, []), True


def write_custom(
    client: ChartMogulClient,
    cache: RelayCache,
    uuid: str,
    fitted: Mapping[str, CustomAttribute],
    *,
    known: tuple[Mapping[str, AttrType], set[str]],
    run: DeliveryRecord,
) -> None:
    """POST keys new to ChartMogul, PUT the others (`known`: types learned, keys on the customer).

    A refused attribute drops only itself (recorded in `run`).
    """
    types, on_customer = known
    new = [a for k, a in fitted.items() if k not in types and k not in on_customer]
    existing = [a for k, a in fitted.items() if k in types or k in on_customer]
    if new:
        added = write_attributes(
            lambda batch: client.add_custom_attributes(uuid, batch), new, cache.learn
        )
        run.drop(added.dropped)
        if added.written:
            cache.learn({a.key: a.type for a in added.written})
            by_key = {a.key: a for a in added.written}
            run.ops.append(
                op("add_custom_attributes", uuid=uuid, attributes=typed_attributes(by_key))
            )
    if existing:
        updated = write_attributes(
            lambda batch: client.update_custom_attributes(uuid, {a.key: a.value for a in batch}),
            existing,
            cache.learn,
        )
        run.drop(updated.dropped)
        if updated.written:
            values = {a.key: a.value for a in updated.written}
            run.ops.append(op("update_custom_attributes", uuid=uuid, values=values))
