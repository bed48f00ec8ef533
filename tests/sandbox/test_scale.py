"""Thousands of customers must not slow lookups down (indexes, not scans)."""

from __future__ import annotations

import time

import httpx

from sandbox.state import Store

COUNT = 3000


def _lookup_time(api: httpx.Client, source: str, ids: range) -> float:
    started = time.perf_counter()
    for index in ids:
        found = api.get(
            "/customers", params={"external_id": f"e{index}", "data_source_uuid": source}
        ).json()["entries"]
        assert [c["external_id"] for c in found] == [f"e{index}"]
        by_email = api.get("/customers/search", params={"email": f"u{index}@example.com"})
        assert by_email.status_code == 200
    return time.perf_counter() - started


def test_lookups_of_the_last_customers_are_as_fast_as_of_the_first(
    api: httpx.Client, source: str
) -> None:
    for index in range(COUNT):
        response = api.post(
            "/customers",
            json={
                "data_source_uuid": source,
                "external_id": f"e{index}",
                "email": f"u{index}@example.com",
            },
        )
        assert response.status_code == 201
    # Best of two rounds each: the box is shared, so one slow round proves nothing.
    first = min(_lookup_time(api, source, range(100)) for _ in range(2))
    last = min(_lookup_time(api, source, range(COUNT - 100, COUNT)) for _ in range(2))
    assert last < first * 3, (first, last)
    page = api.get("/customers", params={"data_source_uuid": source}).json()
    assert len(page["entries"]) == 200 and page["has_more"]


def test_paging_through_a_large_store_visits_each_customer_once() -> None:
    store = Store()
    source = store.add_data_source("s").uuid
    for index in range(COUNT):
        store.add_customer(source, f"e{index}")
    doomed = store.customer_by_identity(source, "e10")
    assert doomed is not None
    store.delete_customer(doomed)
    seen: list[str] = []
    after = None
    while True:
        page, more = store.find_customers(after=after, size=200, data_source_uuid=source)
        seen += [c.external_id for c in page]
        if not more:
            break
        after = page[-1].id
    assert len(seen) == COUNT - 1 == len(set(seen))
    assert "e10" not in seen
