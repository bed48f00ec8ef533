"""The records the sandbox stores: plain dataclasses, rendered to JSON by `shapes`."""

from __future__ import annotations

from dataclasses import dataclass, field

# Customer fields a client may set on create and PATCH, all stored as given (or None).
CUSTOMER_TEXT_FIELDS = ("state", "city", "zip", "owner", "website_url")
# Customer fields that ChartMogul renders as "" rather than null when unset.
CUSTOMER_BLANK_FIELDS = ("name", "email", "company")
CONTACT_TEXT_FIELDS = (
    "first_name",
    "last_name",
    "title",
    "email",
    "phone",
    "linked_in",
    "twitter",
    "notes",
    "external_id",
)


@dataclass
class DataSource:
    """A data source (`ds_` uuid)."""

    uuid: str
    name: str
    created_at: str
    system: str = "Import API"
    status: str = "idle"


@dataclass
class Customer:
    """A customer: `id` is the creation sequence number the cursor pages by."""

    id: int
    uuid: str
    data_source_uuid: str
    external_id: str
    name: str = ""
    email: str = ""
    company: str = ""
    country: str | None = None
    state: str | None = None
    city: str | None = None
    zip: str | None = None
    owner: str | None = None
    website_url: str | None = None
    lead_created_at: str | None = None
    free_trial_started_at: str | None = None
    status: str = "New Lead"
    tags: list[str] = field(default_factory=list)
    custom: dict[str, object] = field(default_factory=dict)
    custom_sources: dict[str, str] = field(default_factory=dict)
    """Where each custom attribute came from (`source`, default "API"); not in API answers."""
    identities: list[tuple[str, str]] = field(default_factory=list)
    """Every (data source uuid, external id) this customer answers to; several after a merge."""
    absorbed: dict[tuple[str, str], Customer] = field(default_factory=dict)
    """The customers merged into this one, by their identity, as they were (for unmerge)."""

    @property
    def data_source_uuids(self) -> list[str]:
        """One entry per identity, parallel to `external_ids` (not deduplicated, as recorded)."""
        return [ds for ds, _ in self.identities]

    @property
    def external_ids(self) -> list[str]:
        """One entry per identity, parallel to `data_source_uuids`."""
        return [ext for _, ext in self.identities]


@dataclass
class Contact:
    """A contact (`con_` uuid) on a customer; `seq` orders the contacts list."""

    seq: int
    uuid: str
    customer_uuid: str | None
    data_source_uuid: str
    customer_external_id: str | None
    position: int = 1
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    email: str | None = None
    phone: str | None = None
    linked_in: str | None = None
    twitter: str | None = None
    notes: str | None = None
    external_id: str | None = None
    last_seen: str | None = None
    custom: dict[str, object] = field(default_factory=dict)
