"""Custom attributes from flattened trait leaves: keys, forced types and collisions (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from worker.mapping.coerce import coerce
from worker.mapping.model import AttrType, CustomAttribute, Dropped
from worker.mapping.types import MAX_DEPTH, TooDeep, infer, sanitise_key


def typed(key: str, value: Any, forced: AttrType, label: str) -> CustomAttribute | Dropped | None:
    """The attribute for a value whose type an override forces (converted losslessly or dropped)."""
    inferred = infer(key, value, label)
    if not isinstance(inferred, CustomAttribute):
        return inferred
    result = coerce(inferred, forced)
    return Dropped(label, result.reason) if isinstance(result, Dropped) else result


def attributes_from(
    leaves: Iterator[tuple[str, Any]] | list[tuple[str, Any]],
    *,
    renames: Mapping[str, str],
    forced: Mapping[str, AttrType],
    strip_prefix: str = "",
    null_clears: bool = False,
) -> tuple[dict[str, CustomAttribute], list[Dropped]]:
    """Custom attributes for (path, value) leaves; on a key collision the first trait wins.

    With `null_clears`, a null value becomes a clear: an attribute whose value is None.
    """
    custom: dict[str, CustomAttribute] = {}
    dropped: list[Dropped] = []
    origin: dict[str, str] = {}
    for path, value in leaves:
        local = (
            path[len(strip_prefix) :] if strip_prefix and path.startswith(strip_prefix) else path
        )
        if isinstance(value, TooDeep):
            dropped.append(Dropped(path, f"nested deeper than {MAX_DEPTH} levels"))
            continue
        key = renames.get(path) or sanitise_key(local.replace(".", "_"))
        if not key:
            dropped.append(Dropped(path, "name has no characters ChartMogul accepts in a key"))
            continue
        if key in custom:
            dropped.append(Dropped(path, f"key {key!r} already set by trait {origin[key]!r}"))
            continue
        if value is None and null_clears:
            custom[key] = CustomAttribute(key, forced.get(path, "String"), None)
            origin[key] = path
            continue
        result = (
            typed(key, value, forced[path], path) if path in forced else infer(key, value, path)
        )
        if isinstance(result, CustomAttribute):
            custom[key] = result
            origin[key] = path
        elif isinstance(result, Dropped):
            dropped.append(result)
    return custom, dropped
