"""Writing a batch of custom attributes so that one refused attribute never blocks the others.

The happy path is one call. When ChartMogul refuses the batch for an attribute reason, the keys it
names are fitted losslessly to the type it reports (or dropped) and the rest is sent again; a
refusal that names no key is narrowed down by halving the batch. Every path is bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cmrelay.errors import PermanentDeliveryError
from worker.delivery.api.refusal import attribute_refusal
from worker.mapping import AttrType, CustomAttribute, Dropped, coerce

log = logging.getLogger(__name__)

Send = Callable[[list[CustomAttribute]], object]
Learn = Callable[[Mapping[str, AttrType]], None]


@dataclass
class Written:
    """What a write left in ChartMogul and what it had to leave out."""

    written: list[CustomAttribute] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)


def refused(exc: PermanentDeliveryError, attrs: Sequence[CustomAttribute]) -> bool:
    """True when `exc` is ChartMogul refusing (some of) these custom attributes."""
    return attribute_refusal(exc, {a.key for a in attrs}) is not None


def real_types(
    named: Mapping[str, AttrType | None], attrs: Sequence[CustomAttribute]
) -> dict[str, AttrType]:
    """The types a refusal reveals for keys that already exist in ChartMogul."""
    # A type word equal to the type we sent says nothing about the key (the value was refused).
    return {a.key: t for a in attrs if (t := named.get(a.key)) and t != a.type}


def fit_refused(
    exc: PermanentDeliveryError,
    attrs: Sequence[CustomAttribute],
    learn: Learn,
    refitted: set[str],
) -> tuple[list[CustomAttribute], list[Dropped], bool]:
    """The batch with the keys `exc` names fitted to their real type or dropped; any named?

    A key in `refitted` was fitted once already: named again, it is dropped (no loop).
    """
    named = attribute_refusal(exc, {a.key for a in attrs}) or {}
    real = real_types(named, attrs)
    learn(real)
    kept: list[CustomAttribute] = []
    dropped: list[Dropped] = []
    for attr in attrs:
        if attr.key not in named:
            kept.append(attr)
        elif attr.key in refitted or attr.key not in real:
            dropped.append(Dropped(attr.key, f"refused by ChartMogul as {attr.type}"))
        elif isinstance(fitted := coerce(attr, real[attr.key]), Dropped):
            dropped.append(fitted)
        else:
            kept.append(fitted)
            refitted.add(attr.key)
    return kept, dropped, bool(named)


def write_attributes(send: Send, attrs: Sequence[CustomAttribute], learn: Learn) -> Written:
    """Send `attrs` in as few calls as the refusals allow; refused ones come back as dropped.

    Errors that are not attribute refusals (404, 5xx, ...) propagate unchanged.
    """
    out = Written()
    refitted: set[str] = set()
    budget = 2 * len(attrs) + 2  # halving needs at most 2n - 1 calls; the rest is slack
    pending = [list(attrs)]
    while pending:
        batch = pending.pop()
        if not batch:
            continue
        if budget <= 0:
            out.dropped += [Dropped(a.key, "not written: too many refusals") for a in batch]
            continue
        budget -= 1
        try:
            send(batch)
        except PermanentDeliveryError as exc:
            if not refused(exc, batch):
                raise
            kept, dropped, named = fit_refused(exc, batch, learn, refitted)
        else:
            out.written += batch
            continue
        out.dropped += dropped
        if named:
            pending.append(kept)
        elif len(batch) == 1:
            out.dropped.append(Dropped(batch[0].key, f"refused by ChartMogul as {batch[0].type}"))
        else:  # a refusal that names no key: find the bad ones by halving
            middle = len(batch) // 2
            pending += [batch[middle:], batch[:middle]]
    return out
