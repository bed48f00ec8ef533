"""The API deliverer's customer custom attributes: fitted to known types, created, written.

ChartMogul fixes a key's type account-wide when it is first created. A write that meets a type
the relay has not learned yet is refused (422); here that costs the one attribute, never the
customer, its other attributes or its contacts (worker/delivery/api/writes.py narrows it down).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from cmrelay.errors import PermanentDeliveryError
from worker.delivery.api.cache import RelayCache
from worker.delivery.api.client import ChartMogulClient, ExternalIdTakenError
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
        if attr.value is None:  # a clear (NULL_TRAITS=clear): nothing to fit
            out[key] = attr
            continue
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

    The refusal's lesson (the real type of a key) is kept in the type cache for the retry;
    ExternalIdTakenError (the customer exists) passes through for the caller to look it up.
    """
    sent = list(custom.values())
    try:
        return client.create_customer(delta.external_id, delta.standard, sent), False
    except ExternalIdTakenError:
        raise
    except PermanentDeliveryError as exc:
        named = attribute_refusal(exc, custom.keys()) if custom else None
        if named is None:
            raise
        log.info("customer create refused for custom attributes; creating it without them")
        cache.learn(real_types(named, sent))
        return client.create_customer(delta.external_id, delta.standard, []), True


def add_new_keys(
    client: ChartMogulClient,
    cache: RelayCache,
    uuid: str,
    new: Mapping[str, CustomAttribute],
    run: DeliveryRecord,
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """POST keys new to the customer (typed); (values written, ChartMogul's last answer).

    A refused attribute drops only itself (recorded in `run`).
    """
    written, answer = _write_keys(
        lambda batch: client.add_custom_attributes(uuid, batch), cache, new, run
    )
    if written:
        cache.learn({a.key: a.type for a in written})
        by_key = {a.key: a for a in written}
        run.ops.append(op("add_custom_attributes", uuid=uuid, attributes=typed_attributes(by_key)))
    return {a.key: a.value for a in written}, answer


def put_existing_keys(
    client: ChartMogulClient,
    cache: RelayCache,
    uuid: str,
    existing: Mapping[str, CustomAttribute],
    run: DeliveryRecord,
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """PUT values of keys that exist, narrowing refusals key by key; (written, last answer)."""
    written, answer = _write_keys(
        lambda batch: client.update_custom_attributes(uuid, {a.key: a.value for a in batch}),
        cache,
        existing,
        run,
    )
    values = {a.key: a.value for a in written}
    if values:
        run.ops.append(op("update_custom_attributes", uuid=uuid, values=values))
    return values, answer


def _write_keys(
    send: Callable[[list[CustomAttribute]], Mapping[str, Any]],
    cache: RelayCache,
    attrs: Mapping[str, CustomAttribute],
    run: DeliveryRecord,
) -> tuple[list[CustomAttribute], Mapping[str, Any]]:
    answers: list[Mapping[str, Any]] = []
    result = write_attributes(lambda batch: answers.append(send(batch)), list(attrs.values()),
                              cache.learn)  # fmt: skip
    run.drop(result.dropped)
    return result.written, answers[-1] if answers else {}
