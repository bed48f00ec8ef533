"""The admin app on a real uvicorn server (loopback, free port) over the session's real Redis."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
import redis

from admin.server import uvicorn_config
from cmrelay.dlq.query import MAX_SELECTION
from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.redis_server import free_port
from cmrelay.settings import Secret, Settings
from tests.servers import serve_in_thread
from tests.support.events import dead_letter

TOKEN = "adm-" + uuid.uuid4().hex
API_KEY = "sk_admin_test_0123456789"


@pytest.fixture
def admin_settings(redis_url: str) -> Settings:
    """A prefix of its own per test, an admin token and a ChartMogul key (to check masking)."""
    return replace(
        Settings(),
        redis_url=redis_url,
        key_prefix=f"adm{uuid.uuid4().hex[:8]}",
        admin_token=Secret(TOKEN),
        chartmogul_api_key=Secret(API_KEY),
        log_level="WARNING",
    )


@pytest.fixture
def dlq(admin_settings: Settings) -> Iterator[DeadLetterQueue]:
    """The DLQ the admin app serves, for arranging and checking."""
    queue = DeadLetterQueue.from_settings(admin_settings)
    yield queue
    queue.client.close()


@pytest.fixture
def admin_url(admin_settings: Settings) -> Iterator[str]:
    """Serve the admin app in a thread for one test; yield its base URL."""
    config = uvicorn_config(admin_settings, "127.0.0.1", free_port())
    with serve_in_thread(config, "admin-under-test") as url:
        yield url


add_entry = dead_letter


def traced_dead_letter(dlq: DeadLetterQueue, name: str) -> str:
    """A dead letter of customer:NAME whose event msg-NAME has a trail saying so; its id."""
    entry_id = add_entry(dlq, name)
    dlq.client.hset(dlq.keys.trace(f"msg-{name}"), mapping={
        "info": '{"source": "wk_x", "type": "identify"}', "state": "dead_lettered",
        "entity": f"customer:{name}", "accepted_at": "1.0",
    })  # fmt: skip
    return entry_id


def queued(dlq: DeadLetterQueue) -> list[bytes]:
    """The envelopes on the ingest queue."""
    client: redis.Redis = dlq.client
    return list(client.lrange(dlq.keys.ingest_queue, 0, MAX_SELECTION))


@pytest.fixture
def browser_like(admin_url: str) -> Iterator[httpx.Client]:
    """An HTTP client that keeps cookies, logged in with the admin token."""
    with httpx.Client(base_url=admin_url, timeout=10) as client:
        answer = client.post("/login", data={"token": TOKEN})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        yield client


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match is not None
    return match.group(1)
