"""DELIVERY_MODE=api: one customer entity's events -> the fewest ChartMogul REST calls.

Runs under the entity's lease (worker.pipeline.deliver), so creates of a customer and its contacts
never race inside the relay; uuids are cached in Redis so a known entity costs no lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from cmrelay.errors import PermanentDeliveryError
from cmrelay.keys import Keys, entity_external_id
from worker.delivery.api.attributes import create_customer, fit_types, write_custom
from worker.delivery.api.cache import RelayCache, type_of_value
from worker.delivery.api.client import ChartMogulClient, discard_process_client, process_client
from worker.delivery.api.record import (
    DeliveryRecord,
    Operation,
    holds,
    match_contact,
    op,
    planned,
)
from worker.delivery.contract import DeliveryContext, DeliveryOutcome, EventResult
from worker.delivery.counting import CountingGate
from worker.mapping import (
    ContactFields,
    CustomerDelta,
    MappingPolicy,
    merge_events,
)
from worker.mapping.operations import same_value, typed_attributes
from worker.mapping.routing import contact_key

log = logging.getLogger(__name__)
T = TypeVar("T")


def build(context: DeliveryContext) -> ApiDeliverer:
    """The deliverer for DELIVERY_MODE=api (one pooled client per process)."""
    counting = CountingGate(context.gate)
    client = process_client(context.settings, counting)
    cache = RelayCache(context.redis, Keys(context.settings.key_prefix))
    return ApiDeliverer(client, cache, context.policy, counting)


class ApiDeliverer:
    """The Deliverer protocol over ChartMogulClient."""

    def __init__(
        self,
        client: ChartMogulClient,
        cache: RelayCache,
        policy: MappingPolicy,
        counting: CountingGate | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.policy = policy
        self.counting = counting or CountingGate(None)

    def deliver(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> DeliveryOutcome:
        """Upsert the customer, its custom attributes and contacts; per-contact failures partial."""
        delta = merge_events(entity_external_id(entity), events, clock, self.policy)
        self.counting.reset()
        run = DeliveryRecord()
        run.drop(delta.dropped)
        try:
            results, clock_updates = self._deliver_once(delta, events, run, trust_cache=True)
        except _StaleCustomerError:
            # The cached customer is gone and nothing had touched it yet: start again from
            # a lookup, once, instead of failing every contact against a uuid that is no more.
            self.cache.drop("customer", delta.external_id)
            results, clock_updates = self._deliver_once(delta, events, run, trust_cache=False)
        # Counted only once the delivery is through: an attempt that fails and is retried
        # would otherwise count the same left-out attributes again.
        self.cache.count_dropped(run.dropped.values(), entity)
        return DeliveryOutcome(clock_updates, self.counting.calls, results, run.ops)

    def _deliver_once(
        self,
        delta: CustomerDelta,
        events: Sequence[dict[str, Any]],
        run: DeliveryRecord,
        *,
        trust_cache: bool,
    ) -> tuple[list[EventResult], dict[str, str]]:
        customer_uuid, fresh = self._with_cache_retry(
            "customer", delta.external_id, lambda cached: self._customer(delta, cached, run)
        )
        unverified = trust_cache and not run.ops  # a cached uuid no call has confirmed
        results: list[EventResult] = []
        clock_updates = dict(delta.clock_updates)
        # The customer's contacts, listed once per delivery (a customer we just made has none).
        listing: list[list[dict[str, Any]]] = [[]] if fresh else []
        for uid, contact in delta.contacts.items():
            key = f"{delta.external_id}|{uid}"
            try:
                self._with_cache_retry(
                    "contact", key,
                    lambda cached, c=contact, k=key: self._contact(  # type: ignore[misc]
                        customer_uuid, c, (k, cached), listing, run.ops
                    ),
                )  # fmt: skip
            except PermanentDeliveryError as exc:
                if unverified and self._customer_gone(delta.external_id, customer_uuid):
                    raise _StaleCustomerError from None
                unverified = False
                log.warning("contact of %s refused (%s); its events go to the DLQ", uid, exc)
                run.ops.append(op("upsert_contact", external_id=uid, failed=exc.message,
                               standard=dict(contact.standard)))  # fmt: skip
                results += [
                    EventResult(str(e.get("messageId", "")), "failed", exc.message, exc)
                    for e in events
                    if e.get("type") == "identify" and contact_key(e) == uid
                ]
                prefix = f"contact:{uid}:"
                clock_updates = {k: v for k, v in clock_updates.items() if not k.startswith(prefix)}
            else:
                unverified = False  # a contact call on this customer went through
        return results, clock_updates

    def _customer_gone(self, external_id: str, cached_uuid: str) -> bool:
        """True when ChartMogul no longer has the customer under the uuid we cached."""
        found = self.client.find_customer(external_id)
        return found is None or found.get("uuid") != cached_uuid

    def _with_cache_retry(self, kind: str, key: str, work: Callable[[str | None], T]) -> T:
        """Run `work` with the cached uuid; a 404 on it drops the entry and looks up once more."""
        cached = self.cache.get(kind, key)
        try:
            return work(cached)
        except PermanentDeliveryError as exc:
            if exc.status != 404 or cached is None:
                raise
            log.info("cached %s uuid is gone from ChartMogul; looking it up again", kind)
            self.cache.drop(kind, key)
            return work(None)

    # -- customer --------------------------------------------------------------------------------

    def _customer(
        self, delta: CustomerDelta, cached: str | None, run: DeliveryRecord
    ) -> tuple[str, bool]:
        """The customer's uuid (found, or created with everything), and whether we created it."""
        types = self.cache.types()
        on_customer: set[str] = set()
        standard = delta.standard
        if cached is not None:
            uuid = cached
        else:
            found = self.client.find_customer(delta.external_id)
            if found is None:
                custom = fit_types(delta.custom, types, run)
                created, without_custom = create_customer(self.client, self.cache, delta, custom)
                uuid = str(created["uuid"])
                self.cache.put("customer", delta.external_id, uuid)
                run.ops.append(
                    op(
                        "create_customer",
                        external_id=delta.external_id,
                        standard=dict(delta.standard),
                        custom=[] if without_custom else typed_attributes(custom),
                    )
                )
                if without_custom:  # attributes refused: written below as on a found customer
                    standard = {
                        k: v for k, v in standard.items() if not same_value(created.get(k), v)
                    }
                    types = self.cache.types()  # with what the refusal taught
                elif holds(created, custom):
                    self.cache.learn({a.key: a.type for a in custom.values()})
                    return uuid, True
                found = created  # theirs (a create raced ours) or ours without attributes
            uuid = str(found["uuid"])
            self.cache.put("customer", delta.external_id, uuid)
            current = (found.get("attributes") or {}).get("custom") or {}
            learned = {k: t for k, v in current.items() if (t := type_of_value(v)) is not None}
            self.cache.learn({k: t for k, t in learned.items() if k not in types})
            types = {**learned, **types}
            on_customer = set(current)
        if standard:
            self.client.update_customer(uuid, standard)
            run.ops.append(op("update_customer", uuid=uuid, standard=dict(standard)))
        fitted = fit_types(delta.custom, types, run)
        write_custom(self.client, self.cache, uuid, fitted, known=(types, on_customer), run=run)
        return uuid, False

    # -- contacts --------------------------------------------------------------------------------

    def _contact(
        self,
        customer_uuid: str,
        contact: ContactFields,
        cache_entry: tuple[str, str | None],
        listing: list[list[dict[str, Any]]],
        ops: list[Operation],
    ) -> None:
        custom = {k: a.value for k, a in contact.custom.items()}
        cache_key, cached = cache_entry
        if cached is not None:
            if contact.standard or custom:
                self.client.update_contact(cached, contact.standard, custom)
                ops.append(
                    op(
                        "update_contact",
                        uuid=cached,
                        standard=dict(contact.standard),
                        custom=custom,
                    )
                )
            return
        if not listing:
            listing.append(self.client.find_contacts(customer_uuid=customer_uuid))
        match = match_contact(listing[0], contact)
        if match is None:
            created = self.client.create_contact(
                customer_uuid, contact.standard, custom, external_id=contact.external_id
            )
            listing[0].append(created)
            self.cache.put("contact", cache_key, str(created["uuid"]))
            ops.append(
                op(
                    "create_contact",
                    customer_uuid=customer_uuid,
                    external_id=contact.external_id,
                    standard=dict(contact.standard),
                    custom=custom,
                )
            )
            return
        uuid = str(match["uuid"])
        self.cache.put("contact", cache_key, uuid)
        standard = {k: v for k, v in contact.standard.items() if not same_value(match.get(k), v)}
        current = match.get("custom") or {}
        changed = {k: v for k, v in custom.items() if not same_value(current.get(k), v)}
        if standard or changed:
            self.client.update_contact(uuid, standard, changed)
            ops.append(op("update_contact", uuid=uuid, standard=standard, custom=changed))

    def planned_operations(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> Sequence[Mapping[str, Any]]:
        """The upserts a delivery would make (pure)."""
        return planned(merge_events(entity_external_id(entity), events, clock, self.policy))

    def probe(self) -> None:
        """One authenticated call that also checks the data source."""
        self.client.ping()

    def close(self) -> None:
        """Close the HTTP pool (and forget it, so this process builds a fresh one)."""
        discard_process_client(self.client)


class _StaleCustomerError(Exception):
    """The cached customer uuid no longer exists in ChartMogul."""
