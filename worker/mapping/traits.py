"""The default tables: which Segment trait feeds which ChartMogul standard field.

Each row is (ChartMogul field, trait paths in priority order). Paths are dotted (`address.city`);
for an Identify's company they are relative to `traits.company`. Every path of a row is consumed
by the row (so `firstName` and `first_name` sent together never also become custom attributes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.mapping.countries import country_code
from worker.mapping.model import Dropped
from worker.mapping.types import MAX_STRING

Table = tuple[tuple[str, tuple[str, ...]], ...]

_ZIP = (
    "address.postalCode",
    "address.postal_code",
    "address.zip",
    "address.zipCode",
    "address.zip_code",
    "postalCode",
    "postal_code",
    "zip",
)
_WEBSITE = ("website", "website_url", "websiteUrl")
_ADDRESS: Table = (
    ("city", ("address.city", "city")),
    ("state", ("address.state", "state")),
    ("zip", _ZIP),
    ("country", ("address.country", "country")),
)

# Group traits -> the customer (external id = groupId).
GROUP_CUSTOMER: Table = (
    ("name", ("name",)),
    ("company", ("name",)),  # ChartMogul shows `company` separately; for a Group it is the name
    ("email", ("email",)),
    ("website_url", _WEBSITE),
    *_ADDRESS,
)

# Identify traits -> the contact (external id = userId).
IDENTIFY_CONTACT: Table = (
    ("email", ("email",)),
    ("first_name", ("firstName", "first_name")),
    ("last_name", ("lastName", "last_name")),
    ("title", ("title",)),
    ("phone", ("phone",)),
    ("linked_in", ("linkedIn", "linkedin", "linked_in")),
    ("twitter", ("twitter",)),
)

# Identify `traits.company.*` -> the company's customer (external id = traits.company.id).
IDENTIFY_COMPANY: Table = (
    ("name", ("name",)),
    ("company", ("name",)),
    ("email", ("email",)),
    ("website_url", _WEBSITE),
    *_ADDRESS,
)

# Identify traits -> the user's own customer (COMPANY_CREATION=identify, no company id).
IDENTIFY_LEAD: Table = (
    ("name", ("name",)),
    ("email", ("email",)),
    ("website_url", _WEBSITE),
    *_ADDRESS,
)

CUSTOMER_FIELDS = frozenset(
    {"name", "company", "email", "website_url", "city", "state", "zip", "country"}
)
CONTACT_FIELDS = frozenset(field for field, _ in IDENTIFY_CONTACT)

# Identity traits: the ids Segment already carries; never custom attributes.
IDENTITY_TRAITS = frozenset({"id", "userId", "user_id", "anonymousId", "anonymous_id"})
# Name parts a full name is split into when the event gives none of them.
NAME_TRAITS = ("name", "firstName", "first_name", "lastName", "last_name")


def clean_standard(  # noqa: PLR0911 (one return per rule)
    field: str, value: Any, path: str
) -> str | Dropped | None:
    """A standard field value as the API takes it, None when empty, Dropped when unusable."""
    if value is None or isinstance(value, bool):
        return None if value is None else Dropped(path, f"{field} must be text")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return Dropped(path, f"{field} must be text, not {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    if len(text) > MAX_STRING:
        return Dropped(path, f"{field} longer than {MAX_STRING} characters")
    if field == "country":
        code = country_code(text)
        return code if code else Dropped(path, "not an ISO 3166 country name or code")
    if field == "email" and not _looks_like_email(text):
        return Dropped(path, "not an email address")
    return text


def _looks_like_email(text: str) -> bool:
    local, at, domain = text.rpartition("@")
    return bool(at and local and "." in domain.strip(".") and not any(c.isspace() for c in text))


def pick_standard(
    values: Mapping[str, Any], table: Table, overrides: Mapping[str, str]
) -> tuple[dict[str, str], set[str], list[Dropped]]:
    """Standard fields from (path -> value); returns (fields, consumed paths, dropped)."""
    fields: dict[str, str] = {}
    consumed: set[str] = set()
    dropped: list[Dropped] = []
    rows: list[tuple[str, tuple[str, ...]]] = [(f, (p,)) for p, f in overrides.items()]
    rows += list(table)
    for field, paths in rows:
        present = [p for p in paths if p in values]
        consumed.update(present)
        if field in fields:
            continue
        for path in present:
            cleaned = clean_standard(field, values[path], path)
            if isinstance(cleaned, Dropped):
                dropped.append(cleaned)
            elif cleaned is not None:
                fields[field] = cleaned
                break
    if "state" in fields and fields.get("country", "US") != "US":
        # ChartMogul keeps a state only on US addresses (it answers 2xx and stores null).
        del fields["state"]
        dropped.append(Dropped("state", "ChartMogul keeps a state only for US addresses"))
    return fields, consumed, dropped


def split_name(full: str) -> tuple[str, str]:
    """'Mary Ann Smith' -> ('Mary Ann', 'Smith'); a single word is a first name."""
    parts = full.strip().rsplit(maxsplit=1)
    if len(parts) == 2:
        return parts[0], parts[1]
    return (parts[0] if parts else ""), ""
