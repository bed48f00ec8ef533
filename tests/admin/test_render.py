"""The page's pure parts: pagination maths, the chart, the filter choices, the replay outcome."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

import pytest

from admin import pages
from admin.chart import chart_svg, nice_ticks
from admin.paging import DEFAULT_PAGE_SIZE, Window, page_size, page_url, totals_line
from cmrelay.dlq.query import ERROR_CLASSES, REASONS, STATUSES
from cmrelay.errors import InvalidQueryError


def test_a_window_numbers_rows_from_one_and_links_only_where_there_is_a_page() -> None:
    first = Window(0, 50, 3048)
    assert (first.first, first.last, first.prev_offset, first.next_offset) == (1, 50, None, 50)
    last = Window(3000, 50, 3048)
    assert (last.first, last.last, last.prev_offset, last.next_offset) == (3001, 3048, 2950, None)
    exact = Window(50, 50, 100)
    assert (exact.last, exact.next_offset) == (100, None)
    past = Window(500, 50, 120)  # a stale link after a purge: back to the last real page
    assert (past.first, past.last, past.prev_offset, past.next_offset) == (0, 0, 100, None)
    empty = Window(0, 50, 0)
    assert (empty.first, empty.prev_offset, empty.next_offset) == (0, None, None)


def test_the_totals_line_says_which_rows_of_how_many_and_how_many_are_dead() -> None:
    assert totals_line(Window(0, 50, 3048), 47, 3001) == (
        "1\u201350 of 3,048 matching · 47 dead, 3,001 replayed"
    )
    assert totals_line(Window(0, 50, 0), 0, 0) == "0 matching · 0 dead, 0 replayed"
    assert totals_line(Window(200, 50, 3), 3, 0).startswith("none shown of 3 matching")


def test_page_links_keep_the_filters_and_the_page_size() -> None:
    params = {"reason": "retry window expired", "entity": "customer:a&b"}
    url = page_url(params, 100, 200)
    assert url == "/?reason=retry+window+expired&entity=customer%3Aa%26b&limit=100&offset=200"
    assert page_url({}, DEFAULT_PAGE_SIZE, 0) == "/"
    assert page_size(None) == DEFAULT_PAGE_SIZE and page_size("200") == 200
    for bad in ("7", "1000", "-1", "x"):
        with pytest.raises(InvalidQueryError, match="page size"):
            page_size(bad)


def test_y_ticks_are_whole_numbers_on_1_2_5_steps_covering_the_peak() -> None:
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(4) == [0, 1, 2, 3, 4]
    assert nice_ticks(9) == [0, 5, 10]
    assert nice_ticks(41) == [0, 20, 40, 60]
    for top in range(0, 5000, 7):
        ticks = nice_ticks(top)
        assert ticks[0] == 0 and ticks[-1] >= top and 2 <= len(ticks) <= 5


def _hourly(counts: list[int]) -> list[dict[str, Any]]:
    return [{"hour": f"2026-12-02T{h:02d}:00Z", "count": c} for h, c in enumerate(counts)]


def test_the_chart_is_valid_svg_with_a_title_axes_labels_and_one_bar_per_hour() -> None:
    counts = [0] * 24
    counts[10] = 7
    svg = chart_svg(_hourly(counts))
    root = ElementTree.fromstring(svg)  # noqa: S314 (our own markup): well-formed SVG
    assert root.get("role") == "img"
    assert root.get("aria-label") == (
        "Dead letters per hour, last 24 h (UTC): 7 in total, at most 7 (hour starting 10:00)"
    )
    assert root.find("title") is not None
    texts = [t.text for t in root.iter("text")]
    assert "Dead letters per hour, last 24 h (UTC)" in texts
    assert {"00:00", "06:00", "12:00", "18:00"} <= set(texts) and "04:00" not in texts
    assert {"0", "2", "4", "6", "8"} <= set(texts) and "dead letters" in texts
    bars = list(root.iter("rect"))
    assert len(bars) == 24
    heights = [float(b.get("height", "0")) for b in bars]
    assert heights[10] == max(heights) > 0 and heights[0] == 0
    assert bars[10].findtext("title") == "10:00 UTC: 7"


def _summary(**extra: Any) -> dict[str, Any]:
    row = {
        "id": "a" * 32, "reason": "permanent", "status": "replayed", "status_code": 422,
        "error_class": "PermanentDeliveryError", "entity": "customer:acme", "message_ids": ["m"],
        "attempts": 2, "last_error": "bad", "dead_lettered_at": "2026-12-02T10:00:00Z",
        "first_attempt_at": "2026-12-02T09:59:59Z", "events": 1,
    }  # fmt: skip
    return {**row, **extra}


def test_the_replay_outcome_shows_state_counts_and_links_to_new_dead_letters() -> None:
    replay = {"state": "mixed", "counts": {"delivered": 2, "dead_lettered": 1},
              "dead_letter_ids": ["b" * 32, "c" * 32]}  # fmt: skip
    html = pages.replay_outcome(_summary(replay=replay))
    assert "partly delivered, partly dead-lettered" in html and "delivered 2" in html
    assert f'<a href="/entries/{"b" * 32}">{"b" * 12}</a>' in html
    assert f'href="/entries/{"c" * 32}"' in html and "new dead letters" in html
    waiting = pages.replay_outcome(_summary(replay={"state": "waiting", "counts": {}}))
    assert "waiting: not delivered yet" in waiting and "/entries/" not in waiting
    assert pages.replay_outcome(_summary()) == ""  # replayed, but no outcome given
    assert pages.replay_outcome(_summary(status="dead", replay={"state": "dead"})) == ""
    hostile = pages.replay_outcome(_summary(replay={"state": "<b>", "dead_letter_ids": ["<i>"]}))
    assert "<b>" not in hostile and "<i>" not in hostile and "&lt;b&gt;" in hostile


def test_an_entry_page_renders_the_replay_outcome_and_entity_links() -> None:
    view = _summary(
        replay={"state": "dead", "counts": {"dead_lettered": 1}, "dead_letter_ids": ["d" * 32]},
        events=[],
        planned_operations=[],
        history=[],
        last_response="",
    )
    html = pages.entry_page(view, "csrf")
    assert "replay outcome" in html and "dead-lettered again" in html
    assert f'href="/entries/{"d" * 32}"' in html
    assert 'href="/?entity=customer%3Aacme"' in html
    assert 'href="/lookup?entity=customer%3Aacme"' in html


def _options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}">(.*?)</select>', html)
    assert select is not None, name
    return re.findall(r'<option value="([^"]*)"', select.group(1))


def test_the_filters_offer_the_known_values_and_those_the_dlq_holds() -> None:
    stats = {"by_status_code": {"422": 3, "none": 1, "503": 2},
             "by_error_class": {"ValueError": 1}}  # fmt: skip
    html = pages.filter_form({"error_class": "Odd<Class>", "entity": "customer:x"}, stats, 100)
    assert _options(html, "reason") == ["", *REASONS]
    assert _options(html, "status") == ["", *STATUSES, "422", "503"]
    classes = _options(html, "error_class")
    assert set(ERROR_CLASSES) | {"ValueError", "Odd&lt;Class&gt;"} <= set(classes)
    assert 'value="Odd&lt;Class&gt;" selected' in html  # a value asked for stays shown
    assert _options(html, "limit") == ["25", "50", "100", "200"]
    assert '<option value="100" selected>' in html
    for free in ("entity", "since", "until", "text"):
        assert f'<input name="{free}"' in html
    assert 'value="customer:x"' in html
