"""DELIVERY_MODE=api: one customer entity's events -> the fewest ChartMogul REST calls.

Runs under the entity's lease (worker.pipeline.deliver), so creates of a customer and its contacts
never race inside the relay. What ChartMogul confirmed holding is kept per customer in Redis
(worker/delivery/api/held.py), so a repeat that changes nothing costs no call, a change costs one
PATCH, and a new contact on a known customer costs one create.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from cmrelay.errors import PermanentDeliveryError
from cmrelay.keys import Keys, entity_external_id
from worker.delivery.api.attributes import (
    add_new_keys,
    create_customer,
    fit_types,
    put_existing_keys,
)
from worker.delivery.api.cache import RelayCache, type_of_value
from worker.delivery.api.client import (
    ChartMogulClient,
    ExternalIdTakenError,
    discard_process_client,
    process_client,
)
from worker.delivery.api.held import Held, HeldPart, held_from_customer, view_delta
from worker.delivery.api.held_store import CreateMode, HeldStore
from worker.delivery.api.record import DeliveryRecord, op, planned
from worker.delivery.api.refusal import attribute_refusal
from worker.delivery.contract import DeliveryContext, DeliveryOutcome, EventResult
from worker.delivery.counting import CountingGate
from worker.mapping import (
    AttrType,
    ContactFields,
    CustomAttribute,
    CustomerDelta,
    MappingPolicy,
    merge_events,
)
from worker.mapping.operations import typed_attributes
from worker.mapping.routing import contact_key, link_subject
from worker.mapping.traits import CONTACT_FIELDS, CUSTOMER_FIELDS

log = logging.getLogger(__name__)


def build(context: DeliveryContext) -> ApiDeliverer:
    """The deliverer for DELIVERY_MODE=api (one pooled client per process)."""
    counting = CountingGate(context.gate)
    client = process_client(context.settings, counting)
    keys = Keys(context.settings.key_prefix)
    cache = RelayCache(context.redis, keys)
    held = HeldStore(context.redis, keys, context.settings.confirmed_state_ttl)
    deliverer = ApiDeliverer(client, cache, context.policy, counting, held)
    deliverer.merge_leads = context.settings.lead_joins_company == "merge"
    return deliverer


class ApiDeliverer:
    """The Deliverer protocol over ChartMogulClient."""

    def __init__(
        self,
        client: ChartMogulClient,
        cache: RelayCache,
        policy: MappingPolicy,
        counting: CountingGate | None = None,
        held: HeldStore | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.policy = policy
        self.counting = counting or CountingGate(None)
        self.held = held or HeldStore(cache.redis, cache.keys, 0)
        self.create_mode = CreateMode(cache.redis, cache.keys)
        self.merge_leads = True  # LEAD_JOINS_COMPANY=merge

    def deliver(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> DeliveryOutcome:
        """Send what ChartMogul does not hold yet; per-contact failures are partial."""
        delta = merge_events(entity_external_id(entity), events, clock, self.policy)
        self.counting.reset()
        run = DeliveryRecord()
        run.drop(delta.dropped)
        try:
            results, clock_updates = self._deliver_once(delta, events, run, trust=True)
        except _StaleCustomerError:
            # What the relay knew of the customer is gone (deleted, merged away): start again
            # from ChartMogul itself, once.
            self.forget(delta.external_id)
            results, clock_updates = self._deliver_once(delta, events, run, trust=False)
        # Counted only once the delivery is through: an attempt that fails and is retried
        # would otherwise count the same left-out attributes again.
        self.cache.count_dropped(run.dropped.values(), entity)
        self.held.count_unstored(run.unstored, entity)
        if self.counting.calls == 0 and not results:
            results = [EventResult(str(e.get("messageId", "")), "unchanged") for e in events]
        return DeliveryOutcome(clock_updates, self.counting.calls, results, run.ops)

    def resync(self, entity: str) -> DeliveryOutcome:
        """Forget what the relay holds for a customer, re-read ChartMogul and send the relay's
        view of it again (run under the entity's lease); nothing known, nothing sent."""
        external_id = entity_external_id(entity)
        view = self.held.load(external_id)
        self.forget(external_id)
        self.counting.reset()
        if view is None:
            return DeliveryOutcome({}, 0)
        run = DeliveryRecord()
        delta = view_delta(external_id, view, self.cache.types())
        results, _ = self._deliver_once(delta, [], run, trust=False)
        self.held.count_unstored(run.unstored, entity)
        return DeliveryOutcome({}, self.counting.calls, results, run.ops)

    def forget(self, external_id: str) -> None:
        """Drop what the relay remembers of a customer (record and uuid)."""
        self.held.drop(external_id)
        self.cache.drop("customer", external_id)

    def _deliver_once(
        self,
        delta: CustomerDelta,
        events: Sequence[dict[str, Any]],
        run: DeliveryRecord,
        *,
        trust: bool,
    ) -> tuple[list[EventResult], dict[str, str]]:
        external_id = delta.external_id
        held = self.held.load(external_id) if trust else None
        cached = self.cache.get("customer", external_id) if trust and held is None else None
        known = held is not None or cached is not None
        calls_before = self.counting.calls
        try:
            held = self._customer(delta, held, cached, run, lookup_first=not trust)
        except PermanentDeliveryError as exc:
            if exc.status == 404 and known:
                raise _StaleCustomerError from None
            raise
        # A remembered uuid that no call has confirmed in this delivery.
        unverified = known and self.counting.calls == calls_before
        if self.merge_leads:
            self._absorb_leads(held, external_id, events, run)
        self._before_contact_creates(external_id, held, delta)
        results: list[EventResult] = []
        clock_updates = dict(delta.clock_updates)
        for uid, contact in delta.contacts.items():
            try:
                self._contact(held, contact, run)
            except PermanentDeliveryError as exc:
                if unverified and self._customer_gone(external_id, held.customer.uuid):
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
                unverified = unverified and self.counting.calls == calls_before
        self.held.save(external_id, held)
        if cached != held.customer.uuid:
            self.cache.put("customer", external_id, held.customer.uuid)
        return results, clock_updates

    def _absorb_leads(
        self, held: Held, external_id: str, events: Sequence[dict[str, Any]], run: DeliveryRecord
    ) -> None:
        """Merge into this customer the lead customers the relay made for users who now belong
        to it, so one person ends as one contact here and no lone lead lingers."""
        users = sorted({u for e in events if (u := _user_of(e)) and u != external_id})
        if not users:
            return
        redis, keys = self.cache.redis, self.cache.keys
        found: Any = redis.hmget(keys.relay_leads, users)
        for user, raw in zip(users, found, strict=True):
            if raw is None:
                continue
            lead_uuid = raw.decode()
            if lead_uuid != held.customer.uuid:
                try:
                    self.client.merge_customers(lead_uuid, held.customer.uuid)
                except PermanentDeliveryError as exc:
                    if exc.status != 404:  # 404: merged or deleted already
                        raise
                else:
                    run.ops.append(op("merge_customers", lead=user, from_uuid=lead_uuid,
                                      into_uuid=held.customer.uuid))  # fmt: skip
                    redis.hincrby(keys.counters, "leads_merged", 1)
            lead = self.held.load(user)
            if lead is not None:  # its contacts move with it, uuids unchanged
                held.contacts.update(lead.contacts)
                held.contact_emails.update(lead.contact_emails)
            else:
                held.contacts_complete = False
            self.forget(user)
            redis.hdel(keys.relay_leads, user)

    def _before_contact_creates(self, external_id: str, held: Held, delta: CustomerDelta) -> None:
        """A contact about to be created without a listing must not be created twice: if this
        worker dies after the create and before the record is saved, the redo would trust the
        old index and create it again. So the stored record first stops claiming to list every
        contact; the redo then lists them and finds the one made. One Redis write, no call."""
        if not held.contacts_complete:
            return
        unknown = [
            c for c in delta.contacts.values()
            if held.contact_for(c.external_id, c.standard.get("email")) is None
        ]  # fmt: skip
        if unknown:
            held.contacts_complete = False
            self.held.save(external_id, held)
            held.contacts_complete = True

    def _customer_gone(self, external_id: str, uuid: str) -> bool:
        """True when ChartMogul no longer has the customer under the uuid we remembered."""
        found = self.client.find_customer(external_id)
        return found is None or found.get("uuid") != uuid

    # -- customer --------------------------------------------------------------------------------

    def _customer(
        self,
        delta: CustomerDelta,
        held: Held | None,
        cached: str | None,
        run: DeliveryRecord,
        *,
        lookup_first: bool,
    ) -> Held:
        """The customer's record after writing what ChartMogul did not hold yet."""
        types: Mapping[str, AttrType] = self.cache.types()
        fitted = fit_types(delta.custom, types, run)
        if held is None and cached is not None:
            held = Held(HeldPart(cached))  # uuid known, values not: one PATCH says it all
        elif held is None:
            values = {k: a for k, a in fitted.items() if a.value is not None}  # no clears
            held, types = self._find_or_create(delta, values, types, run, lookup_first)
        self._write_customer(held, delta.standard, fitted, types, run)
        return held

    def _find_or_create(
        self,
        delta: CustomerDelta,
        fitted: Mapping[str, CustomAttribute],
        types: Mapping[str, AttrType],
        run: DeliveryRecord,
        lookup_first: bool,
    ) -> tuple[Held, Mapping[str, AttrType]]:
        """Create first (one call for a new customer) unless creates keep meeting existing
        customers; a taken external id leads to a lookup that understands merges."""
        external_id = delta.external_id
        found: dict[str, Any] | None = None
        if lookup_first or self.create_mode.lookup_first():
            found = self.client.find_customer(external_id)
            (self.create_mode.was_new if found is None else self.create_mode.existed)()
        if found is None:
            try:
                created, without_custom = create_customer(self.client, self.cache, delta, fitted)
            except ExternalIdTakenError:
                self.create_mode.existed()
                found = self.client.find_customer(external_id) or self.client.find_merged(
                    external_id, _emails(delta)
                )
                if found is None:
                    raise PermanentDeliveryError(
                        f"ChartMogul says customer {external_id!r} exists but neither a lookup, "
                        "an email search nor a walk over the first customers finds it",
                        status=422,
                    ) from None
            else:
                self.create_mode.was_new()
                return self._created(delta, fitted, created, without_custom, run), types
        held = held_from_customer(found, CUSTOMER_FIELDS)
        learned = {k: t for k, v in held.customer.custom.items() if (t := type_of_value(v))}
        self.cache.learn({k: t for k, t in learned.items() if k not in types})
        return held, {**learned, **types}

    def _created(
        self,
        delta: CustomerDelta,
        fitted: Mapping[str, CustomAttribute],
        created: Mapping[str, Any],
        without_custom: bool,
        run: DeliveryRecord,
    ) -> Held:
        held = Held(HeldPart(str(created["uuid"])), contacts_complete=True)  # no contacts yet
        sent_custom = {} if without_custom else {k: a.value for k, a in fitted.items()}
        run.unstored += held.customer.absorb(delta.standard, sent_custom, created)
        if not without_custom:
            self.cache.learn({a.key: a.type for a in fitted.values()})
        if delta.external_id in delta.contacts:  # a user who is its own (lead) customer
            self.cache.redis.hset(
                self.cache.keys.relay_leads, delta.external_id, held.customer.uuid
            )
        run.ops.append(op("create_customer", external_id=delta.external_id,
                          standard=dict(delta.standard),
                          custom=[] if without_custom else typed_attributes(fitted)))  # fmt: skip
        return held

    def _write_customer(
        self,
        held: Held,
        standard: Mapping[str, Any],
        fitted: Mapping[str, CustomAttribute],
        types: Mapping[str, AttrType],
        run: DeliveryRecord,
    ) -> None:
        """One PATCH for changed standard fields and existing keys; a POST for new keys."""
        part = held.customer
        cleared = [k for k, a in fitted.items() if a.value is None]
        fitted = {k: a for k, a in fitted.items() if a.value is not None}
        changed_standard = part.changed_standard(standard)
        changed = part.changed_custom({k: a.value for k, a in fitted.items()})
        existing = {k: fitted[k] for k in changed if k in types or k in part.custom}
        new = {k: fitted[k] for k in changed if k not in existing}
        if changed_standard or existing:
            self._patch_customer(part, changed_standard, existing, run)
        if new:
            written, answer = add_new_keys(self.client, self.cache, part.uuid, new, run)
            run.unstored += part.absorb({}, written, answer)
        # A key is removed only where ChartMogul may hold it (a record that knows nothing of
        # the customer's keys cannot tell, so it asks for the keys the account has).
        doomed = [k for k in cleared if k in part.custom or (not part.custom and k in types)]
        if doomed:
            self.client.delete_custom_attributes(part.uuid, doomed)
            run.ops.append(op("remove_custom_attributes", uuid=part.uuid, keys=doomed))
            for key in doomed:
                part.custom.pop(key, None)
                part.refused.pop(f"custom.{key}", None)

    def _patch_customer(
        self,
        part: HeldPart,
        standard: Mapping[str, Any],
        existing: Mapping[str, CustomAttribute],
        run: DeliveryRecord,
    ) -> None:
        values = {k: a.value for k, a in existing.items()}
        answer: Mapping[str, Any]
        try:
            answer = self.client.update_customer(part.uuid, standard, values)
        except PermanentDeliveryError as exc:
            if not existing or attribute_refusal(exc, existing.keys()) is None:
                raise
            # One key refused: standard fields alone, then the keys one refusal at a time.
            log.info("customer PATCH refused for custom attributes; writing them key by key")
            if standard:
                answer = self.client.update_customer(part.uuid, standard)
                run.ops.append(op("update_customer", uuid=part.uuid, standard=dict(standard)))
                run.unstored += part.absorb(standard, {}, answer)
            written, answer = put_existing_keys(self.client, self.cache, part.uuid, existing, run)
            run.unstored += part.absorb({}, written, answer)
            return
        run.ops.append(op("update_customer", uuid=part.uuid, standard=dict(standard),
                          custom=values))  # fmt: skip
        lost = part.absorb(standard, values, answer)
        # A PATCH may ignore keys the customer does not carry yet: those get their typed POST.
        again = {n[len("custom.") :] for n in lost if n.startswith("custom.")}
        if again:
            retry = {k: existing[k] for k in again}
            written, answer = add_new_keys(self.client, self.cache, part.uuid, retry, run)
            lost = [n for n in lost if not n.startswith("custom.")]
            lost += part.absorb({}, written, answer)
        run.unstored += lost

    # -- contacts --------------------------------------------------------------------------------

    def _contact(self, held: Held, contact: ContactFields, run: DeliveryRecord) -> None:
        """Create or update one contact of the customer with only what differs."""
        try:
            self._write_contact(held, contact, run)
        except PermanentDeliveryError as exc:
            hit = held.contact_for(contact.external_id, contact.standard.get("email"))
            if exc.status != 404 or hit is None:
                raise
            # The contact we remembered is gone: list the customer's contacts again, once.
            del held.contacts[hit[0]]
            held.contacts_complete = False
            self._write_contact(held, contact, run)

    def _write_contact(self, held: Held, contact: ContactFields, run: DeliveryRecord) -> None:
        custom = {k: a.value for k, a in contact.custom.items()}
        email = contact.standard.get("email")
        hit = held.contact_for(contact.external_id, email)
        if hit is None and not held.contacts_complete:
            for entry in self.client.find_contacts(customer_uuid=held.customer.uuid):
                held.add_contact(entry, CONTACT_FIELDS)
            held.contacts_complete = True
            hit = held.contact_for(contact.external_id, email)
        if hit is None:
            created = self.client.create_contact(
                held.customer.uuid, contact.standard, custom, external_id=contact.external_id
            )
            part = HeldPart(str(created["uuid"]))
            lost = part.absorb(contact.standard, custom, created)
            held.contacts[contact.external_id] = part
            if email:
                held.contact_emails[str(email).lower()] = contact.external_id
            run.unstored += [f"contact.{name}" for name in lost]
            run.ops.append(op("create_contact", customer_uuid=held.customer.uuid,
                              external_id=contact.external_id, standard=dict(contact.standard),
                              custom=custom))  # fmt: skip
            return
        _, part = hit
        standard = part.changed_standard(contact.standard)
        changed = part.changed_custom(custom)
        if standard or changed:
            answer = self.client.update_contact(part.uuid, standard, changed)
            run.unstored += [f"contact.{n}" for n in part.absorb(standard, changed, answer)]
            run.ops.append(op("update_contact", uuid=part.uuid, standard=standard,
                              custom=changed))  # fmt: skip

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


def _user_of(event: Mapping[str, Any]) -> str | None:
    """The user an event says belongs to its customer (a Group's subject, an Identify's)."""
    return link_subject(event) if event.get("type") == "group" else contact_key(event)


def _emails(delta: CustomerDelta) -> list[str]:
    """Emails the events give for the customer and its contacts (to find a merged customer)."""
    found = [str(delta.standard.get("email") or "")]
    found += [str(c.standard.get("email") or "") for c in delta.contacts.values()]
    return [e for e in found if e]


class _StaleCustomerError(Exception):
    """The cached customer uuid no longer exists in ChartMogul."""
