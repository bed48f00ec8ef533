"""The ingest tells clients to retry (503 + Retry-After) rather than lose events."""

from __future__ import annotations

import httpx
import redis

from cmrelay.redis_server import PrivateRedis
from tests.ingest.conftest import WRITE_KEY, ingest_settings, queued, running

AUTH = (WRITE_KEY, "")


def test_above_the_high_water_mark_requests_get_503_and_nothing_is_queued(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with (
        running(ingest_settings(redis_url, ingest_high_water=3)) as url,
        httpx.Client(base_url=url) as http,
    ):
        batch = {"batch": [{"type": "identify", "userId": f"u{i}"} for i in range(3)]}
        assert http.post("/v1/batch", json=batch, auth=AUTH).status_code == 200
        assert http.get("/ready").json()["ready"] is False
        refused = http.post("/v1/batch", json=batch, auth=AUTH)
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) > 0
        assert http.post("/v1/identify", json={"userId": "x"}, auth=AUTH).status_code == 503
        assert len(queued(redis_client)) == 3  # all or nothing: the refused batch left no trace
        ready = http.get("/ready")
        assert ready.status_code == 503 and "Retry-After" in ready.headers
        redis_client.rpop("cmrelay:ingest")  # a worker drains one
        assert http.post("/v1/identify", json={"userId": "x"}, auth=AUTH).status_code == 200
        assert 'outcome="unavailable"' in http.get("/metrics").text


def test_redis_going_away_gives_503_then_the_ingest_recovers() -> None:
    server = PrivateRedis().start()
    try:
        with running(ingest_settings(server.url)) as url, httpx.Client(base_url=url) as http:
            event = {"userId": "u1"}
            assert http.post("/v1/identify", json=event, auth=AUTH).status_code == 200
            server.stop()
            down = http.post("/v1/identify", json=event, auth=AUTH)
            assert down.status_code == 503
            assert int(down.headers["Retry-After"]) > 0
            assert http.get("/ready").status_code == 503
            assert http.get("/health").status_code == 200
            assert "cmrelay_redis_up 0.0" in http.get("/metrics").text
            server.start()  # same port, a fresh (empty) server
            assert http.post("/v1/identify", json=event, auth=AUTH).status_code == 200
            assert http.get("/ready").status_code == 200
            # Counted while Redis was down, written once it is back: nothing lost.
            text = http.get("/metrics").text
            assert (
                'cmrelay_ingest_requests_total{endpoint="identify",outcome="unavailable"} 1.0'
                in text
            )
            client = redis.Redis.from_url(server.url)
            assert len(queued(client)) == 1
            client.close()
    finally:
        server.cleanup()
