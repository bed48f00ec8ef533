"""The accept step: claim envelopes from the ingest list, route, dedupe, fill mailboxes."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from cmrelay.envelope import ORIGIN_BACKFILL, Envelope, EnvelopeError
from cmrelay.keys import entity_key
from cmrelay.lua import AcceptItem
from worker.delivery.limiter import LIVE_HOLD
from worker.mapping import EventRoute, group_link, link_subject, route_event, route_webhook_event
from worker.pipeline.engine import Engine

log = logging.getLogger(__name__)

# route(event, linked_group) -> EventRoute (worker.mapping.route_event with the policy bound).
Router = Callable[[Mapping[str, Any], str | None], EventRoute]

BATCH_SIZE = 200  # per Lua commit: big enough to amortise round trips, small enough to not block


def default_router(engine: Engine) -> Router:
    """The mapping router with the policy the worker loaded at start (webhook mode: Segment's)."""
    if engine.settings.delivery_mode == "webhook":
        return lambda event, _linked: route_webhook_event(event)
    policy = engine.policy
    return lambda event, linked: route_event(event, policy, linked)


def accept_batch(engine: Engine, router: Router | None = None, limit: int = BATCH_SIZE) -> int:
    """Claim and commit one batch; returns how many envelopes were claimed (0 = queue empty)."""
    token = secrets.token_hex(8)
    items = engine.scripts.accept_claim(token, limit=limit, claim_seconds=engine.claim_timeout)
    if not items:
        return 0
    ops, live = _plan(engine, items, router or default_router(engine))
    settings = engine.settings
    queued = engine.scripts.accept_commit(
        token,
        ops,
        coalesce_seconds=settings.coalesce_window,
        dedupe_ttl=int(settings.dedupe_window),
        waiting_ttl=int(settings.dlq_retention),
        trace_ttl=int(settings.trace_retention),
    )
    if queued == -1:
        log.warning("accept claim expired before commit; %d envelopes go round again", len(items))
    elif live:  # a backfill yields to these in the rate limit until they are delivered
        hold_ms = int((settings.coalesce_window + LIVE_HOLD) * 1000)
        engine.redis.set(engine.keys.live_waiting, 1, px=hold_ms)
    return len(items)


def _plan(engine: Engine, items: list[bytes], router: Router) -> tuple[list[AcceptItem], bool]:
    """Decode and route each envelope; links from Group calls in this batch count at once.
    Also whether any live (not backfilled) event went into a mailbox."""
    keys = engine.keys
    envelopes: list[Envelope | None] = []
    for raw in items:
        try:
            envelopes.append(Envelope.from_bytes(raw))
        except EnvelopeError as exc:
            log.error("dropping an unreadable queue item: %s", exc)
            envelopes.append(None)
    users = {_subject(e.event) for e in envelopes if e is not None} - {None}
    known = _linked_groups(engine, sorted(u for u in users if u))
    ops: list[AcceptItem] = []
    live = False
    for raw, env in zip(items, envelopes, strict=True):
        if env is None:
            ops.append(_count(raw, "invalid", keys.counters))
            continue
        item = _trail(engine, env, _route(engine, env, raw, known, router))
        if item.kind == "m" and env.origin != ORIGIN_BACKFILL:  # its entity is claimed first
            item, live = replace(item, live=True), True
        ops.append(item)
    return ops, live


def _trail(engine: Engine, env: Envelope, item: AcceptItem) -> AcceptItem:
    """The item with where and what to keep of the event's trail (none at TRACE_RETENTION 0)."""
    if engine.settings.trace_retention <= 0:
        return item
    info = {"source": env.source, "origin": env.origin, "type": env.event.get("type"),
            "received_at": env.received_at}  # fmt: skip
    key = engine.keys.trace(env.message_id)
    return replace(item, trace_key=key, trace_info=orjson.dumps(info).decode())


def _route(
    engine: Engine, env: Envelope, raw: bytes, known: dict[str, str], router: Router
) -> AcceptItem:
    """The accept item for one decoded envelope (routes it; learns links from Group calls)."""
    keys = engine.keys
    event = env.event
    subject = _subject(event)
    route = router(event, known.get(subject) if subject else None)
    dedupe_key = keys.dedupe(env.source, env.message_id)
    if route.outcome == "deliver" and route.customer_external_id is not None:
        entity = entity_key(route.customer_external_id)
        link = group_link(event)
        link_user, link_group = link if link else ("", "")
        if link_user:
            known[link_user] = link_group
        waiting = keys.waiting_for_group(link_user) if link_user else ""
        return AcceptItem(
            "m", raw, "accepted", dedupe_key, keys.mailbox(entity), entity=entity,
            link_user=link_user, link_group=link_group, waiting_key=waiting, replay=env.replay,
        )  # fmt: skip
    if route.outcome == "wait_for_group" and subject:
        target = keys.waiting_for_group(subject)
        return AcceptItem("w", raw, "waiting_for_group", dedupe_key, target, replay=env.replay)
    return _count(raw, _counter_name(route, event), keys.counters)


def _count(raw: bytes, counter: str, placeholder_key: str) -> AcceptItem:
    return AcceptItem("c", raw, counter, placeholder_key, placeholder_key)


def _subject(event: Any) -> str | None:
    """Whose user -> group link an Identify is routed by (None for other events)."""
    if not isinstance(event, Mapping) or event.get("type") != "identify":
        return None
    return link_subject(event)


def _counter_name(route: EventRoute, event: Mapping[str, Any]) -> str:
    """Counter for an event not delivered: ignored ones by type, the rest by reason."""
    if route.outcome == "ignored":
        return f"ignored:type_{event.get('type')}"
    if route.outcome == "wait_for_group":  # no subject to wait under (only an email)
        return "skipped:no user to link to a group"
    return f"{route.outcome}:{route.reason}" if route.reason else route.outcome


def _linked_groups(engine: Engine, users: list[str]) -> dict[str, str]:
    """userId -> groupId links learned from earlier Group calls."""
    if not users:
        return {}
    values: list[Any] = engine.redis.hmget(engine.keys.user_groups, users)
    return {u: v.decode() for u, v in zip(users, values, strict=True) if v is not None}


def reap_expired_claims(engine: Engine) -> int:
    """Put batches of accepters that died mid-way back on the queue; returns envelopes moved."""
    keys = engine.keys
    seconds, micros = engine.redis.time()
    now = seconds + micros / 1_000_000
    tokens: list[Any] = engine.redis.zrangebyscore(
        keys.accepting_index, "-inf", now, start=0, num=100
    )
    moved = 0
    for raw_token in tokens:
        moved += engine.scripts.accept_reap(raw_token.decode())
    return moved
