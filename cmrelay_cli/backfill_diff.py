"""`cmrelay backfill --dry-run`: which entities the files would touch, and for a sample of them
what would change in ChartMogul, as `cmrelay map --diff` shows it (its own functions).

`EntitySample` sees every event the dry run reads (routing it as the accept step would, with the
links learned from Group calls earlier in the files) and keeps, for the first few entities only,
the newest event per (type, user): memory stays bounded however long the files are.
"""

from __future__ import annotations

import io
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from cmrelay.errors import ConfigurationError, DeliveryError
from cmrelay.keys import entity_key
from cmrelay_cli.map import _not_kept_reader, _state_reader, describe, render
from worker.mapping import MappingPolicy, group_link, link_subject, route_event

SHOWN_ENTITIES = 20
DEFAULT_SAMPLE = 5


class EntitySample:
    """Counts events per entity and keeps the newest events of a sample of entities."""

    def __init__(self, policy: MappingPolicy, sample: int = DEFAULT_SAMPLE) -> None:
        self.policy = policy
        self.sample = sample
        self.touched: Counter[str] = Counter()
        self.links: dict[str, str] = {}
        # entity -> (type, user) -> (event, the group its user was linked to then)
        self.kept: dict[str, dict[tuple[str, str], tuple[dict[str, Any], str | None]]] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        """See one event the dry run would queue."""
        link = group_link(event)
        if link:
            self.links[link[0]] = link[1]
        subject = link_subject(event) if event.get("type") == "identify" else None
        linked = self.links.get(subject) if subject else None
        route = route_event(event, self.policy, linked)
        if route.outcome != "deliver" or route.customer_external_id is None:
            self.touched[f"({route.outcome})"] += 1
            return
        entity = entity_key(route.customer_external_id)
        self.touched[entity] += 1
        if entity not in self.kept and len(self.kept) >= self.sample:
            return
        newest = self.kept.setdefault(entity, {})
        key = (str(event.get("type")), str(event.get("userId") or event.get("anonymousId")))
        held = newest.get(key)
        if held is None or _when(held[0]) <= _when(event):
            newest[key] = (event, linked)

    def events(self, entity: str) -> Iterator[tuple[dict[str, Any], str | None]]:
        """The kept events of one sampled entity, oldest first."""
        yield from sorted(self.kept.get(entity, {}).values(), key=lambda pair: _when(pair[0]))


def _when(event: dict[str, Any]) -> str:
    return str(event.get("timestamp") or "")


def print_entities(sample: EntitySample, out: TextIO) -> None:
    """The entities the run would touch, busiest first, and the events routed nowhere."""
    touched = sample.touched
    real = {e: n for e, n in touched.items() if not e.startswith("(")}
    print(f"entities it would touch: {len(real)}", file=out)
    for entity, count in Counter(real).most_common(SHOWN_ENTITIES):
        print(f"  {entity}  {count} events", file=out)
    if len(real) > SHOWN_ENTITIES:
        print(f"  ... and {len(real) - SHOWN_ENTITIES} more", file=out)
    for outcome, count in sorted((e, n) for e, n in touched.items() if e.startswith("(")):
        print(f"  {outcome}  {count} events", file=out)


def print_diff(sample: EntitySample, settings: Any, out: TextIO, err: TextIO | None = None) -> None:
    """What would change for each sampled entity: `map --diff` against ChartMogul, or the
    planned operations when ChartMogul cannot be read (no credentials, or an error)."""
    err = err or sys.stderr
    if not sample.kept:
        return
    try:
        reader, close = _state_reader(settings)
        not_kept = _not_kept_reader(settings)
        how = "against ChartMogul's current state, as `cmrelay map --diff`"
    except ConfigurationError as exc:
        print(f"cmrelay backfill: no diff ({exc}); showing the planned operations", file=err)
        reader, close, not_kept, how = None, (lambda: None), None, "planned, state not read"
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    print(f"what would change for {len(sample.kept)} sampled entities ({how}, {started}; "
          "newest event per type and user):", file=out)  # fmt: skip
    try:
        for entity in sample.kept:
            print(f"{entity}:", file=out)
            for event, linked in sample.events(entity):
                try:
                    results = describe([event], sample.policy, linked, reader, not_kept)
                except DeliveryError as exc:
                    print(f"  cannot read ChartMogul's state: {exc}", file=out)
                    return
                text = io.StringIO()
                render(results, text)
                out.write(textwrap.indent(text.getvalue(), "  "))
    finally:
        close()
