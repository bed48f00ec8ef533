"""The in-memory store: records plus the indexes that keep every lookup O(1) at any size."""

from __future__ import annotations

import uuid as uuidlib
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sandbox.paging import walk
from sandbox.records import Contact, Customer, DataSource
from sandbox.validation import DUPLICATE_EXTERNAL_ID, Attr, Invalid, format_timestamp

# Fields an unmerged customer gets back from the record it was before the merge.
RESTORED_FIELDS = (
    "name", "email", "company", "country", "state", "city", "zip", "owner", "website_url",
    "lead_created_at", "free_trial_started_at", "status",
)  # fmt: skip
DROPPED_KEPT = 10_000  # the state dump lists the latest dropped fields, not all of them


def new_uuid(prefix: str) -> str:
    """A ChartMogul-style identifier: prefix, underscore, UUID."""
    return f"{prefix}_{uuidlib.uuid4()}"


def _drop(seqs: list[int], seq: int) -> None:
    index = bisect_left(seqs, seq)
    if index < len(seqs) and seqs[index] == seq:
        del seqs[index]


class Store:
    """Data sources, customers, contacts, custom attribute types and webhook receipts."""

    def __init__(self) -> None:
        self.data_sources: dict[str, DataSource] = {}
        self.customers: dict[str, Customer] = {}
        self.contacts: dict[str, Contact] = {}
        self.attribute_types: dict[str, str] = {}  # fixed per key, account-wide
        self.contact_custom_keys: set[str] = set()  # keys any contact has stored
        self.webhook_receipts: list[dict[str, Any]] = []
        self.dropped: deque[dict[str, str]] = deque(maxlen=DROPPED_KEPT)
        self._jobs: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._customer_by_seq: dict[int, str] = {}
        self._customer_seqs: list[int] = []
        self._customer_seqs_by_ds: defaultdict[str, list[int]] = defaultdict(list)
        self._customer_by_ds_ext: dict[tuple[str, str], str] = {}
        self._customers_by_ext: defaultdict[str, set[str]] = defaultdict(set)
        self._customers_by_email: defaultdict[str, set[str]] = defaultdict(set)
        self._contact_by_seq: dict[int, str] = {}
        self._contact_seqs: list[int] = []
        self._contacts_by_customer: defaultdict[str, set[str]] = defaultdict(set)
        self._contacts_by_email: defaultdict[str, set[str]] = defaultdict(set)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    # Data sources -----------------------------------------------------------------------------

    def add_data_source(self, name: object, uuid: str | None = None) -> DataSource:
        """A new data source; names are required and unique. `uuid` pins its identifier."""
        if not isinstance(name, str) or not name.strip():
            raise Invalid({"name": "A name is required for each data source."})
        if any(ds.name == name for ds in self.data_sources.values()):
            raise Invalid({"name": "Has already been taken."})
        created = format_timestamp(datetime.now(UTC))
        source = DataSource(uuid or new_uuid("ds"), name, created)
        self.data_sources[source.uuid] = source
        return source

    def delete_data_source(self, source: DataSource) -> None:
        """Remove a data source with its customers and their contacts."""
        for seq in list(self._customer_seqs_by_ds.get(source.uuid, [])):
            customer = self.customers.get(self._customer_by_seq[seq])
            if customer is not None and customer.data_source_uuid == source.uuid:
                self.delete_customer(customer)
        self._customer_seqs_by_ds.pop(source.uuid, None)
        del self.data_sources[source.uuid]

    # Customers --------------------------------------------------------------------------------

    def add_customer(self, data_source_uuid: str, external_id: str, **fields: Any) -> Customer:
        """A new customer; (data source, external id) must be unique."""
        if (data_source_uuid, external_id) in self._customer_by_ds_ext:
            raise Invalid({"external_id": DUPLICATE_EXTERNAL_ID})
        customer = Customer(
            id=self._next(),
            uuid=new_uuid("cus"),
            data_source_uuid=data_source_uuid,
            external_id=external_id,
            identities=[(data_source_uuid, external_id)],
            **fields,
        )
        self.customers[customer.uuid] = customer
        self._customer_by_seq[customer.id] = customer.uuid
        self._customer_seqs.append(customer.id)
        self._link_source(customer, data_source_uuid, external_id)
        self._index_email(customer.uuid, customer.email, self._customers_by_email)
        return customer

    def _link_source(self, customer: Customer, ds: str, external_id: str) -> None:
        self._customer_by_ds_ext[(ds, external_id)] = customer.uuid
        self._customers_by_ext[external_id].add(customer.uuid)
        seqs = self._customer_seqs_by_ds[ds]
        index = bisect_left(seqs, customer.id)
        if index == len(seqs) or seqs[index] != customer.id:  # once per data source
            seqs.insert(index, customer.id)

    @staticmethod
    def _index_email(key: str, email: str | None, index: defaultdict[str, set[str]]) -> None:
        if email:
            index[email.lower()].add(key)

    @staticmethod
    def _unindex_email(key: str, email: str | None, index: defaultdict[str, set[str]]) -> None:
        if email and key in index.get(email.lower(), ()):
            index[email.lower()].discard(key)
            if not index[email.lower()]:
                del index[email.lower()]

    def update_customer(self, customer: Customer, changes: dict[str, Any]) -> None:
        """Apply validated field changes, keeping the email index in step."""
        if "email" in changes:
            self._unindex_email(customer.uuid, customer.email, self._customers_by_email)
        for name, value in changes.items():
            setattr(customer, name, value)
        if "email" in changes:
            self._index_email(customer.uuid, customer.email, self._customers_by_email)

    def delete_customer(self, customer: Customer) -> None:
        """Remove a customer, its identities and its contacts."""
        for ds, ext in list(customer.identities):
            self._unlink_source(customer, ds, ext)
        self._unindex_email(customer.uuid, customer.email, self._customers_by_email)
        for contact_uuid in list(self._contacts_by_customer.get(customer.uuid, ())):
            self.delete_contact(self.contacts[contact_uuid])
        _drop(self._customer_seqs, customer.id)
        del self._customer_by_seq[customer.id]
        del self.customers[customer.uuid]

    def _unlink_source(self, customer: Customer, ds: str, ext: str) -> None:
        """Forget one identity; the indexes keep the customer while another identity needs it."""
        customer.identities.remove((ds, ext))
        self._customer_by_ds_ext.pop((ds, ext), None)
        if all(other != ext for _, other in customer.identities):
            self._customers_by_ext[ext].discard(customer.uuid)
            if not self._customers_by_ext[ext]:
                del self._customers_by_ext[ext]
        if all(other != ds for other, _ in customer.identities):
            _drop(self._customer_seqs_by_ds[ds], customer.id)

    def check_custom(self, attrs: list[Attr]) -> None:
        """Invalid unless every key keeps the type it was first created with."""
        seen = dict(self.attribute_types)
        for key, kind, _, _ in attrs:
            if seen.setdefault(key, kind) != kind:
                raise Invalid({f"custom.{key}": f"Attribute already exists with type {seen[key]}."})

    def set_custom(self, customer: Customer, attrs: list[Attr]) -> None:
        """Store validated custom attributes; a key's type is fixed by its first use."""
        self.check_custom(attrs)
        for key, kind, value, source in attrs:
            self.attribute_types.setdefault(key, kind)
            customer.custom[key] = value
            customer.custom_sources[key] = source

    def remove_custom(self, customer: Customer, keys: Iterable[str]) -> None:
        """Remove custom attributes from a customer (unknown keys are no error)."""
        for key in keys:
            customer.custom.pop(key, None)
            customer.custom_sources.pop(key, None)

    def note_dropped(self, kind: str, uuid: str, fields: Iterable[str]) -> None:
        """Record fields that were answered as accepted but not stored (shown in the dump)."""
        self.dropped.extend({"object": kind, "uuid": uuid, "field": name} for name in fields)

    def customer_by_identity(self, data_source_uuid: str, external_id: str) -> Customer | None:
        """The customer with this external id in this data source."""
        found = self._customer_by_ds_ext.get((data_source_uuid, external_id))
        return self.customers[found] if found else None

    def merge_customers(self, source: Customer, target: Customer) -> None:
        """Fold `source` into `target`: its identities join target's lists, its tags, custom
        attributes and contacts move; target keeps its own main ids; source's uuid is gone."""
        pairs = list(source.identities)
        absorbed = {**source.absorbed, (source.data_source_uuid, source.external_id): source}
        for contact_uuid in list(self._contacts_by_customer.get(source.uuid, ())):
            self.update_contact(self.contacts[contact_uuid], {"customer_uuid": target.uuid})
        self.delete_customer(source)
        for ds, ext in pairs:
            target.identities.append((ds, ext))
            self._link_source(target, ds, ext)
        target.absorbed.update(absorbed)
        target.tags.extend(tag for tag in source.tags if tag not in target.tags)
        target.custom = {**source.custom, **target.custom}
        target.custom_sources = {**source.custom_sources, **target.custom_sources}

    def check_unmerge(self, customer: Customer, data_source_uuid: str, external_id: str) -> None:
        """Invalid unless (data source, external id) is a merged-in identity of `customer`."""
        if (data_source_uuid, external_id) not in customer.identities:
            raise Invalid({"external_id": "This customer has no such data source and external ID."})
        if (data_source_uuid, external_id) == (customer.data_source_uuid, customer.external_id):
            raise Invalid({"external_id": "A customer's own external ID cannot be unmerged."})

    def unmerge_customer(
        self, customer: Customer, data_source_uuid: str, external_id: str
    ) -> Customer:
        """Split a merged-in identity off `customer` into a new customer (a new uuid), with the
        fields, tags and custom attributes it had when it was merged; contacts stay."""
        self.check_unmerge(customer, data_source_uuid, external_id)
        pair = (data_source_uuid, external_id)
        self._unlink_source(customer, *pair)
        before = customer.absorbed.pop(pair, None)
        restored = {name: getattr(before, name) for name in RESTORED_FIELDS} if before else {}
        split = self.add_customer(data_source_uuid, external_id, **restored)
        if before is not None:
            split.tags = list(before.tags)
            split.custom, split.custom_sources = dict(before.custom), dict(before.custom_sources)
        return split

    # Asynchronous jobs (merges) -----------------------------------------------------------------

    def later(self, due: float, job: Callable[[], None]) -> None:
        """Run `job` at the first `settle` at or after `due` (monotonic seconds)."""
        self._jobs.append((due, self._next(), job))
        self._jobs.sort(key=lambda entry: entry[:2])

    def settle(self, now: float) -> None:
        """Run the jobs that are due, oldest first."""
        while self._jobs and self._jobs[0][0] <= now:
            _, _, job = self._jobs.pop(0)
            job()

    @property
    def pending_jobs(self) -> int:
        """Jobs accepted (202) but not yet done."""
        return len(self._jobs)

    def find_customers(
        self,
        *,
        after: int | None,
        size: int,
        data_source_uuid: str | None = None,
        external_id: str | None = None,
        email: str | None = None,
        among: Iterable[str] | None = None,
        keep: Callable[[Customer], bool] | None = None,
        merged: bool = True,
    ) -> tuple[list[Customer], bool]:
        """One page of customers matching the filters, via the most selective index. With
        `merged`, the id filters also match identities merged in; without, only main ids."""
        seqs: list[int]
        if among is not None:
            seqs = self._seqs_of(among)
        elif data_source_uuid is not None and external_id is not None:
            hit = self._customer_by_ds_ext.get((data_source_uuid, external_id))
            seqs = [self.customers[hit].id] if hit else []
        elif external_id is not None:
            seqs = self._seqs_of(self._customers_by_ext.get(external_id, ()))
        elif email is not None:
            seqs = self._seqs_of(self._customers_by_email.get(email.lower(), ()))
        elif data_source_uuid is not None:
            seqs = self._customer_seqs_by_ds.get(data_source_uuid, [])
        else:
            seqs = self._customer_seqs

        def passes(seq: int) -> bool:
            customer = self.customers[self._customer_by_seq[seq]]
            main = [(customer.data_source_uuid, customer.external_id)]
            pairs = customer.identities if merged else main
            if data_source_uuid is not None and all(ds != data_source_uuid for ds, _ in pairs):
                return False
            if external_id is not None and all(ext != external_id for _, ext in pairs):
                return False
            return keep is None or keep(customer)

        page, more = walk(seqs, after, size, passes)
        return [self.customers[self._customer_by_seq[seq]] for seq in page], more

    def _seqs_of(self, uuids: Iterable[str]) -> list[int]:
        return sorted(self.customers[u].id for u in uuids)

    def customers_with_email(self, email: str, *, contacts: bool) -> set[str]:
        """Uuids of customers with this email (or, with `contacts`, a contact with it)."""
        found = set(self._customers_by_email.get(email.lower(), ()))
        if not contacts:
            return found
        for contact_uuid in self._contacts_by_email.get(email.lower(), ()):
            owner = self.contacts[contact_uuid].customer_uuid
            if owner:
                found.add(owner)
        return found

    # Contacts ---------------------------------------------------------------------------------

    def add_contact(self, customer: Customer, data_source_uuid: str, **fields: Any) -> Contact:
        """A new contact on `customer`."""
        contact = Contact(
            seq=self._next(),
            uuid=new_uuid("con"),
            customer_uuid=customer.uuid,
            data_source_uuid=data_source_uuid,
            customer_external_id=customer.external_id,
            **fields,
        )
        self.contacts[contact.uuid] = contact
        self._contact_by_seq[contact.seq] = contact.uuid
        self._contact_seqs.append(contact.seq)
        self._contacts_by_customer[customer.uuid].add(contact.uuid)
        self._index_email(contact.uuid, contact.email, self._contacts_by_email)
        self.contact_custom_keys.update(contact.custom)
        return contact

    def update_contact(self, contact: Contact, changes: dict[str, Any]) -> None:
        """Apply validated changes, keeping the email and customer indexes in step."""
        self._unindex_email(contact.uuid, contact.email, self._contacts_by_email)
        if contact.customer_uuid:
            self._contacts_by_customer[contact.customer_uuid].discard(contact.uuid)
        for name, value in changes.items():
            setattr(contact, name, value)
        if "customer_uuid" in changes and contact.customer_uuid in self.customers:
            contact.customer_external_id = self.customers[contact.customer_uuid].external_id
        self._index_email(contact.uuid, contact.email, self._contacts_by_email)
        if contact.customer_uuid:
            self._contacts_by_customer[contact.customer_uuid].add(contact.uuid)
        self.contact_custom_keys.update(contact.custom)

    def set_primary_contact(self, customer: Customer, changes: dict[str, Any]) -> Contact:
        """Update the customer's first contact at position 1, or add one there."""
        mine = [self.contacts[u] for u in self._contacts_by_customer.get(customer.uuid, ())]
        primary = min((c for c in mine if c.position == 1), key=lambda c: c.seq, default=None)
        if primary is None:
            return self.add_contact(customer, customer.data_source_uuid, **changes)
        self.update_contact(primary, changes)
        return primary

    def delete_contact(self, contact: Contact) -> None:
        """Remove a contact."""
        self._unindex_email(contact.uuid, contact.email, self._contacts_by_email)
        if contact.customer_uuid:
            self._contacts_by_customer[contact.customer_uuid].discard(contact.uuid)
        _drop(self._contact_seqs, contact.seq)
        del self._contact_by_seq[contact.seq]
        del self.contacts[contact.uuid]

    def find_contacts(
        self,
        *,
        after: int | None,
        size: int,
        customer_uuid: str | None = None,
        email: str | None = None,
        keep: Callable[[Contact], bool] | None = None,
    ) -> tuple[list[Contact], bool]:
        """One page of contacts matching the filters, via the most selective index."""
        seqs: list[int]
        if customer_uuid is not None:
            seqs = sorted(
                self.contacts[u].seq for u in self._contacts_by_customer.get(customer_uuid, ())
            )
        elif email is not None:
            seqs = sorted(
                self.contacts[u].seq for u in self._contacts_by_email.get(email.lower(), ())
            )
        else:
            seqs = self._contact_seqs

        def passes(seq: int) -> bool:
            contact = self.contacts[self._contact_by_seq[seq]]
            if email is not None and (contact.email or "").lower() != email.lower():
                return False
            return keep is None or keep(contact)

        page, more = walk(seqs, after, size, passes)
        return [self.contacts[self._contact_by_seq[seq]] for seq in page], more
