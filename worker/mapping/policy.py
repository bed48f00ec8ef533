"""Mapping policy: COMPANY_CREATION plus the overrides read from MAPPING_FILE (TOML)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from cmrelay.errors import ConfigurationError
from cmrelay.settings import Settings
from cmrelay.toml_file import load_toml
from worker.mapping.model import ATTR_TYPES, AttrType
from worker.mapping.traits import CONTACT_FIELDS, CUSTOMER_FIELDS
from worker.mapping.types import sanitise_key

CALLS = ("group", "identify")


@dataclass(frozen=True)
class CallOverrides:
    """Overrides for one call type, keyed by dotted trait path (`address.street`)."""

    rename: Mapping[str, str] = field(default_factory=dict)  # trait -> custom attribute key
    types: Mapping[str, AttrType] = field(default_factory=dict)  # trait -> forced type
    ignore: frozenset[str] = frozenset()  # traits (and everything under them) never sent
    standard: Mapping[str, str] = field(default_factory=dict)  # trait -> standard field

    def ignores(self, path: str) -> bool:
        """True when `path` or one of its parents is ignored."""
        return any(path == p or path.startswith(p + ".") for p in self.ignore)


@dataclass(frozen=True)
class MappingPolicy:
    """Everything mapping needs to know beyond the event itself."""

    company_creation: Literal["identify", "group"] = "identify"
    group: CallOverrides = field(default_factory=CallOverrides)
    identify: CallOverrides = field(default_factory=CallOverrides)
    null_clears: bool = False  # NULL_TRAITS=clear: a null trait removes the custom attribute


def load_mapping_policy(settings: Settings) -> MappingPolicy:
    """The policy for these settings; reads MAPPING_FILE when set (the only I/O of mapping)."""
    creation: Literal["identify", "group"] = (
        "group" if settings.company_creation == "group" else "identify"
    )
    clears = settings.null_traits == "clear"
    if not settings.mapping_file:
        return MappingPolicy(company_creation=creation, null_clears=clears)
    path = Path(settings.mapping_file)
    data = load_toml(path, "MAPPING_FILE")
    try:
        overrides = parse_overrides(data.get("mapping", data))
    except ValueError as exc:
        raise ConfigurationError(f"MAPPING_FILE {path}: {exc}") from None
    return MappingPolicy(company_creation=creation, null_clears=clears, **overrides)


def parse_overrides(data: Mapping[str, Any]) -> dict[str, CallOverrides]:
    """Overrides per call type from the file's [group]/[identify] tables; ValueError if bad."""
    unknown = set(data) - set(CALLS)
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)}; expected [group] and [identify]")
    return {call: _call_overrides(call, _table(data, call, call)) for call in CALLS}


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"[{where}] must be a table")
    return value


def _call_overrides(call: str, section: Mapping[str, Any]) -> CallOverrides:
    unknown = set(section) - {"rename", "types", "ignore", "standard"}
    if unknown:
        raise ValueError(f"[{call}]: unknown key(s) {sorted(unknown)}")
    rename = {str(k): str(v) for k, v in _table(section, "rename", f"{call}.rename").items()}
    for trait, key in rename.items():
        if not key or sanitise_key(key) != key:
            raise ValueError(f"[{call}.rename] {trait!r}: {key!r} is not a key of [A-Za-z0-9_]")
    types: dict[str, AttrType] = {}
    for trait, kind in _table(section, "types", f"{call}.types").items():
        if kind not in ATTR_TYPES:
            raise ValueError(f"[{call}.types] {trait!r}: {kind!r} is not one of {ATTR_TYPES}")
        types[str(trait)] = cast(AttrType, kind)
    standard = {str(k): str(v) for k, v in _table(section, "standard", f"{call}.standard").items()}
    for trait, target in standard.items():
        allowed = (
            CUSTOMER_FIELDS if call == "group" or trait.startswith("company.") else CONTACT_FIELDS
        )
        if target not in allowed:
            raise ValueError(
                f"[{call}.standard] {trait!r}: {target!r} is not one of {sorted(allowed)}"
            )
    ignore = section.get("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(t, str) for t in ignore):
        raise ValueError(f"[{call}] ignore must be a list of trait names")
    return CallOverrides(rename=rename, types=types, ignore=frozenset(ignore), standard=standard)
