"""The whole relay from real parts: sandbox (HTTP), ingest (uvicorn), Celery workers, Redis."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from cmrelay.dlq.entry import DlqEntry
from cmrelay.dlq.store import DeadLetterQueue, DlqFilter
from cmrelay.keys import Keys
from cmrelay.redis_conn import connect
from cmrelay.settings import Settings, load_settings
from sandbox.config import SandboxConfig
from sandbox.runner import SandboxServer
from tests.ingest.conftest import ingest_settings, running
from tests.support.events import envelope
from tests.support.processes import FAST_ENGINE_ENV, WorkerProcesses, wait_for
from tests.support.relay_state import entity_state, settled

API_KEY, DATA_SOURCE = "e2e-sandbox-key", "ds_e2e_relay"
WEBHOOK_TOKEN = "e2e-webhook-token"
RELAY_ENV = {
    **FAST_ENGINE_ENV,
    "CMRELAY_DELIVERER": "",  # the built-in deliverer of DELIVERY_MODE
    "RETRY_WINDOW": "60",  # outages in these tests outlast the backoff cap, not the window
}


def sandbox_config(api_key: str = API_KEY) -> SandboxConfig:
    """Limits off (tests switch them on through /_sandbox/faults); a fixed data source."""
    return SandboxConfig(
        api_key=api_key, rate_limit=0, max_in_flight=0, data_source_uuid=DATA_SOURCE,
        webhook_token=WEBHOOK_TOKEN,
    )  # fmt: skip


@dataclass
class SandboxRelay:
    """Handles on every part, and what the tests ask of them."""

    sandbox: SandboxServer
    ingest_url: str
    settings: Settings
    client: redis.Redis
    workers: WorkerProcesses
    keys: Keys = field(init=False)
    dlq: DeadLetterQueue = field(init=False)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.key_prefix)
        self.dlq = DeadLetterQueue(self.client, self.keys, self.settings.dlq_retention)

    def state(self) -> dict[str, Any]:
        """The sandbox's whole store."""
        data: dict[str, Any] = httpx.get(f"{self.sandbox.control_url}/state", timeout=10).json()
        return data

    def faults(self, **changes: Any) -> None:
        """Change the sandbox's faults and limits."""
        response = httpx.post(f"{self.sandbox.control_url}/faults", json=changes, timeout=10)
        response.raise_for_status()

    def behave(self, **settings: Any) -> None:
        """Change the sandbox's answers to the questions the real API leaves open."""
        response = httpx.post(f"{self.sandbox.control_url}/behaviour", json=settings, timeout=10)
        response.raise_for_status()

    def api(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A call to the sandbox's ChartMogul API, as someone other than the relay."""
        response = httpx.request(method, f"{self.sandbox.base_url}{path}", auth=(API_KEY, ""),
                                 timeout=10, **kwargs)  # fmt: skip
        response.raise_for_status()
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.sandbox.control_url}/stats", timeout=10).json()
        return data

    def customers(self, *external_ids: str) -> dict[str, dict[str, Any]]:
        """Customers with these external ids, by external id (a duplicate would fail the test)."""
        found: dict[str, dict[str, Any]] = {}
        for customer in self.state()["customers"]:
            ext = customer["external_id"]
            if ext in external_ids:
                assert ext not in found, f"customer {ext} exists twice"
                found[ext] = customer
        return found

    def contacts_of(self, external_id: str) -> list[dict[str, Any]]:
        return [c for c in self.state()["contacts"] if c["customer_external_id"] == external_id]

    def idle(self) -> bool:
        """Nothing queued, accepted-but-pending, scheduled or leased anywhere."""
        c, k = self.client, self.keys
        return (
            c.llen(k.ingest_queue) == 0
            and c.zcard(k.accepting_index) == 0
            and c.zcard(k.due) == 0
            and not c.keys(f"{k.prefix}:mbox:*")
            and not c.keys(f"{k.prefix}:lease:*")
        )

    def wait_idle(self, timeout: float = 30) -> None:
        try:
            wait_for(self.idle, timeout, "the relay to drain")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.workers.logs()[-4000:]}") from None

    def counter(self, name: str) -> int:
        return int(self.client.hget(self.keys.counters, name) or 0)

    def push(self, *items: bytes) -> None:
        """What the ingest does: LPUSH envelopes on the ingest list."""
        self.client.lpush(self.keys.ingest_queue, *items)

    def rules(self, *rules: dict[str, Any]) -> None:
        """Replace the sandbox's targeted fault rules (none: clear them)."""
        self.faults(rules=list(rules))

    def requests(self, match: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Requests the sandbox answered (path, query or body containing `match`)."""
        params: dict[str, Any] = {"since": since, **({"match": match} if match else {})}
        url = f"{self.sandbox.control_url}/requests"
        found: list[dict[str, Any]] = httpx.get(url, params=params, timeout=10).json()["requests"]
        return found

    def _event_lines(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(worker index, record) of every per-event JSON log line of every worker."""
        for index in range(len(self.workers.procs)):
            for line in self.workers.stderr_lines(index):
                if line.startswith("{"):
                    record = orjson.loads(line)
                    if record.get("message_id") and record.get("outcome"):
                        yield index, record

    def outcomes(self) -> Counter[tuple[str, str]]:
        """(message_id, outcome) of every per-event log line of every worker, counted."""
        return Counter((r["message_id"], r["outcome"]) for _, r in self._event_lines())

    def delivered_by_worker(self) -> Counter[int]:
        """How many "delivered" event lines each worker process logged."""
        return Counter(i for i, r in self._event_lines() if r["outcome"] == "delivered")

    def settled(self, entity: str) -> bool:
        """Nothing pending, scheduled or leased for the entity."""
        return settled(self.client, self.keys, entity)

    def wait_delivered(self, entity: str, message_ids: list[str], timeout: float = 20) -> None:
        """Until a worker logged each message as delivered (or unchanged) and the entity is
        settled."""

        def done() -> bool:
            outcomes = self.outcomes()
            done = all(
                outcomes[(m, "delivered")] or outcomes[(m, "unchanged")] for m in message_ids
            )
            return done and self.settled(entity)

        try:
            wait_for(done, timeout, f"{message_ids} delivered to {entity}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe(entity)}") from None

    def describe(self, entity: str) -> str:
        """Everything known about an entity, for a failure message."""
        external = entity.partition(":")[2]
        calls = [(r["method"], r["path"], r["status"]) for r in self.requests(external)]
        state = entity_state(self.client, self.keys, entity)
        return f"calls={calls}\n{state}\n{self.workers.logs()[-3000:]}"

    def dead_letters(self, entity: str) -> list[DlqEntry]:
        return self.dlq.list(DlqFilter(entity=entity))

    def creates(self, external_id: str) -> int:
        """Customer creates the sandbox answered with 201 for this external id."""
        return sum(
            1
            for r in self.requests(external_id)
            if (r["method"], r["path"], r["status"]) == ("POST", "/v1/customers", 201)
        )

    def stop_sandbox(self) -> None:
        self.sandbox.stop()

    def restart_sandbox(self, api_key: str) -> None:
        """Stop the sandbox and start a fresh one on the same port (state is lost)."""
        port = self.sandbox.port
        self.sandbox.stop()
        self.sandbox = SandboxServer(sandbox_config(api_key), port=port).start()


def new_customer() -> tuple[str, str]:
    """A fresh customer external id and its entity key."""
    cid = f"c{uuid.uuid4().hex[:10]}"
    return cid, f"customer:{cid}"


def group_event(cid: str, traits: dict[str, Any] | None = None, **kwargs: Any) -> bytes:
    """A Group call with no user: the customer alone, no contact."""
    return envelope("group", group_id=cid, user_id=None, traits=traits, **kwargs)


def message_id(raw: bytes) -> str:
    """The messageId inside a queued envelope."""
    return str(orjson.loads(raw)["event"]["messageId"])


def relay_env(
    redis_url: str, sandbox: SandboxServer, config_file: Path, **env: str
) -> dict[str, str]:
    """The workers' environment: the fast engine settings on a prefix of their own."""
    return {
        **RELAY_ENV,
        "REDIS_URL": redis_url,
        "CMRELAY_KEY_PREFIX": f"sb{uuid.uuid4().hex[:6]}",
        "CMRELAY_CONFIG": str(config_file),
        "CHARTMOGUL_API_KEY": API_KEY,
        "CHARTMOGUL_API_BASE": sandbox.base_url,
        "CHARTMOGUL_DATA_SOURCE_UUID": DATA_SOURCE,
        **env,
    }


@contextmanager
def sandbox_relay(
    redis_url: str,
    log_dir: Path,
    workers: int = 2,
    start: bool = True,
    concurrency: int = 4,
    **env: str,
) -> Iterator[SandboxRelay]:
    """Sandbox, ingest and `workers` Celery worker processes, stopped at the end."""
    config_file = log_dir / "relay.toml"
    config_file.write_text("")
    with ExitStack() as stack:
        sandbox = stack.enter_context(SandboxServer(sandbox_config()))
        full_env = relay_env(redis_url, sandbox, config_file, **env)
        settings = load_settings(full_env)
        url = stack.enter_context(
            running(ingest_settings(redis_url, key_prefix=settings.key_prefix))
        )
        client = connect(redis_url)
        stack.callback(client.close)
        procs = WorkerProcesses(full_env, log_dir)
        relay = SandboxRelay(sandbox, url, settings, client, procs)
        stack.callback(relay.stop_sandbox)  # the one running at the end (tests restart it)
        stack.callback(procs.stop)
        if start:
            procs.start(workers, concurrency)
        yield relay
