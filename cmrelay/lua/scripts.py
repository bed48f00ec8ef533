"""One typed method per Lua script: named arguments in, a Python value out.

Key names come from `Keys`, so a caller says which entity or token it means, not which Redis
keys a script touches. Scripts run with EVALSHA (redis-py falls back to EVAL once per client).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis
import redis.asyncio as aioredis

from cmrelay.keys import Keys
from cmrelay.lua.loader import script_file


@dataclass(frozen=True)
class AcceptItem:
    """One envelope of an accept commit: where it goes and what it counts."""

    kind: Literal["m", "w", "c"]  # mailbox, wait for a group, count only
    payload: bytes
    counter: str
    dedupe_key: str
    target_key: str
    entity: str = ""
    link_user: str = ""
    link_group: str = ""
    waiting_key: str = ""
    replay: bool = False
    trace_key: str = ""  # the event's trail; "" keeps none
    trace_info: str = ""  # JSON: source, origin, type, received_at
    live: bool = False  # a live (not backfilled) event: its entity is claimed first


@dataclass(frozen=True)
class DueClaim:
    """Entities one claim took: those with live events (claimed first), then the rest."""

    live: list[str]
    backfill: list[str]


RetryMode = Literal["clear", "record", "keep"]
_Item = tuple[dict[str, str], dict[str, Any]]  # one repeated group: its keys and arguments


class Scripts:
    """Every engine script, bound to one sync client and one key prefix."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._registered: dict[str, Any] = {}

    def _run(
        self,
        name: str,
        keys: Mapping[str, str],
        args: Mapping[str, Any],
        items: Sequence[tuple[Mapping[str, str], Mapping[str, Any]]] = (),
    ) -> Any:
        file = script_file(name)
        key_list, arg_list = file.order(keys, args, items)
        script = self._registered.get(name)
        if script is None:
            script = self._registered[name] = self.client.register_script(file.source)
        return script(keys=key_list, args=arg_list)

    # -- accept ----------------------------------------------------------------------------------

    def accept_claim(self, token: str, *, limit: int, claim_seconds: float) -> list[bytes]:
        """Move up to `limit` envelopes from the ingest list into this accepter's claim."""
        k = self.keys
        keys = {"ingest": k.ingest_queue, "claim": k.accepting(token),
                "claims_index": k.accepting_index}  # fmt: skip
        args = {"limit": limit, "token": token, "claim_seconds": claim_seconds}
        return list(self._run("accept_claim", keys, args))

    def accept_commit(
        self,
        token: str,
        items: Sequence[AcceptItem],
        *,
        coalesce_seconds: float,
        dedupe_ttl: int,
        waiting_ttl: int,
        trace_ttl: int = 0,
    ) -> int:
        """Commit a claimed batch; the number queued, or -1 when the claim was reaped first."""
        k = self.keys
        keys = {"claims_index": k.accepting_index, "claim": k.accepting(token), "due": k.due,
                "counters": k.counters, "user_groups": k.user_groups,
                "due_live": k.due_live}  # fmt: skip
        args = {"token": token, "coalesce_seconds": coalesce_seconds,
                "dedupe_ttl": dedupe_ttl, "waiting_ttl": waiting_ttl,
                "trace_ttl": trace_ttl}  # fmt: skip
        per_item = [(_commit_keys(i), _commit_args(i)) for i in items]
        return int(self._run("accept_commit", keys, args, per_item))

    def accept_reap(self, token: str) -> int:
        """Return one expired claim to the ingest list; envelopes moved (0: not expired)."""
        k = self.keys
        keys = {"claims_index": k.accepting_index, "claim": k.accepting(token),
                "ingest": k.ingest_queue}  # fmt: skip
        return int(self._run("accept_reap", keys, {"token": token}))

    # -- schedule and deliver --------------------------------------------------------------------

    def due_claim(self, *, limit: int, claim_seconds: float, live_limit: int = 0) -> DueClaim:
        """Entities whose time has come, re-scored to now + claim_seconds: up to `live_limit`
        hinted live ones first, then up to `limit` more in due order."""
        args = {"limit": limit, "live_limit": live_limit, "claim_seconds": claim_seconds}
        keys = {"due": self.keys.due, "due_live": self.keys.due_live}
        live, other = self._run("due_claim", keys, args)
        return DueClaim([e.decode() for e in live], [e.decode() for e in other])

    def lease(
        self,
        mode: Literal["acquire", "renew"],
        entity: str,
        *,
        token: str,
        ttl_ms: int,
        claim_seconds: float,
    ) -> bool:
        """Take or renew an entity's lease, keeping the entity due at now + claim_seconds."""
        keys = {"lease": self.keys.lease(entity), "due": self.keys.due}
        args = {"mode": mode, "token": token, "ttl_ms": ttl_ms, "entity": entity,
                "claim_seconds": claim_seconds}  # fmt: skip
        return bool(self._run("lease", keys, args))

    def deliver_finish(
        self,
        entity: str,
        *,
        token: str,
        drain: int,
        delay: float | None,
        coalesce: float,
        retry_mode: RetryMode,
        now: float,
        last_error: str,
        pause_reason: str,
        clock_json: bytes,
        counters_json: bytes,
        attempt_json: bytes,
        dlq_id: str = "",
        dlq_json: bytes = b"",
        dlq_reason: str = "",
        dlq_ttl: int,
    ) -> bool:
        """Apply one attempt's outcome while holding the lease; False when the lease was lost."""
        k = self.keys
        keys = {
            "lease": k.lease(entity), "mailbox": k.mailbox(entity), "due": k.due,
            "clock": k.attr_clock(entity), "retry": k.retry_state(entity),
            "counters": k.counters, "dlq_index": k.dlq_index,
            "dlq_entry": k.dlq_entry(dlq_id or "-"), "dlq_status": k.dlq_status,
            "pause": k.pause, "dlq_reasons": k.dlq_reasons, "due_live": k.due_live,
        }  # fmt: skip
        args = {
            "token": token, "entity": entity, "drain": drain,
            "delay": "" if delay is None else f"{delay:.6f}", "coalesce": coalesce,
            "retry_mode": retry_mode, "now": f"{now:.6f}", "last_error": last_error,
            "dlq_id": dlq_id, "dlq_json": dlq_json, "dlq_ttl": dlq_ttl,
            "pause_reason": pause_reason, "clock_json": clock_json,
            "counters_json": counters_json, "attempt_json": attempt_json,
            "dlq_reason": dlq_reason,
        }  # fmt: skip
        return bool(self._run("deliver_finish", keys, args))

    # -- dead letters ----------------------------------------------------------------------------

    def dlq_replay(self, entry_id: str, envelopes: Sequence[bytes]) -> bool:
        """Flip a dead entry to replayed and queue its envelopes, once; False if not dead."""
        keys = {"dlq_status": self.keys.dlq_status, "ingest": self.keys.ingest_queue}
        items: list[_Item] = [({}, {"envelope": e}) for e in envelopes]
        return int(self._run("dlq_replay", keys, {"entry_id": entry_id}, items)) == 1

    # -- ingest ----------------------------------------------------------------------------------

    def ingest_push(self, envelopes: Sequence[bytes], *, high_water: int) -> int:
        """LPUSH every envelope or none; the new length, or -1 at the high-water mark."""
        items: list[_Item] = [({}, {"envelope": e}) for e in envelopes]
        keys = {"ingest": self.keys.ingest_queue}
        return int(self._run("ingest_push", keys, {"high_water": high_water}, items))

    # -- the request gate ------------------------------------------------------------------------

    def _gate_keys(self) -> dict[str, str]:
        k = self.keys
        return {"rate_bucket": k.rate_bucket, "in_flight": k.in_flight,
                "blocked_until": k.blocked_until}  # fmt: skip

    def limiter_acquire(
        self,
        token: str,
        *,
        rate: float,
        max_in_flight: int,
        slot_ttl_us: int,
        recover_per_second: float,
        tolerance_us: int,
        lane: Literal["live", "backfill", "started"] = "live",
        backfill_share: float = 1.0,
        live_hold_ms: int = 5000,
    ) -> tuple[bool, int]:
        """(True, granted_at_us) or (False, microseconds worth waiting)."""
        args = {"rate": rate, "max_in_flight": max_in_flight, "token": token,
                "slot_ttl_us": slot_ttl_us, "recover_per_second": recover_per_second,
                "tolerance_us": tolerance_us, "lane": lane, "backfill_share": backfill_share,
                "live_hold_ms": live_hold_ms}  # fmt: skip
        keys = {**self._gate_keys(), "backfill_bucket": self.keys.backfill_rate_bucket,
                "live_waiting": self.keys.live_waiting}  # fmt: skip
        ok, value = self._run("limiter_acquire", keys, args)
        return int(ok) == 1, int(value)

    def limiter_observe(
        self,
        *,
        status: int,
        block_us: int,
        decrease: float,
        min_factor: float,
        recover_per_second: float,
    ) -> None:
        """Slow every worker down after a 429/503 (no-op for other statuses)."""
        gate = self._gate_keys()
        keys = {"rate_bucket": gate["rate_bucket"], "blocked_until": gate["blocked_until"]}
        args = {"status": status, "block_us": block_us, "decrease": decrease,
                "min_factor": min_factor, "recover_per_second": recover_per_second}  # fmt: skip
        self._run("limiter_observe", keys, args)

    def limiter_release(self, token: str) -> None:
        """Give an in-flight slot back."""
        self._run("limiter_release", {"in_flight": self.keys.in_flight}, {"token": token})


class AsyncScripts:
    """The ingest's script, bound to one asyncio client and one key prefix."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._push = client.register_script(script_file("ingest_push").source)

    async def ingest_push(self, envelopes: Sequence[bytes], *, high_water: int) -> int:
        """LPUSH every envelope or none; the new length, or -1 at the high-water mark."""
        file = script_file("ingest_push")
        items: list[_Item] = [({}, {"envelope": e}) for e in envelopes]
        keys, args = file.order(
            {"ingest": self.keys.ingest_queue}, {"high_water": high_water}, items
        )
        return int(await self._push(keys=keys, args=args))


def _commit_keys(item: AcceptItem) -> dict[str, str]:
    waiting = item.waiting_key or item.target_key  # a placeholder key when nobody is linked
    trace = item.trace_key or item.target_key  # a placeholder when the trail is off
    return {"dedupe": item.dedupe_key, "target": item.target_key, "waiting": waiting,
            "trace": trace}  # fmt: skip


def _commit_args(item: AcceptItem) -> dict[str, Any]:
    return {
        "kind": item.kind, "payload": item.payload, "entity": item.entity,
        "counter": item.counter, "link_user": item.link_user, "link_group": item.link_group,
        "replay": "1" if item.replay else "0", "info": item.trace_info if item.trace_key else "",
        "live": "1" if item.live else "0",
    }  # fmt: skip
