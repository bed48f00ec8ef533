"""The reference run: the known stream with duplicates and late events, no faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from .pipeline import pipeline
from .report import assert_exactly_once, record, summarise
from .stream import Mix, generate


@pytest.mark.faults
def test_a_stream_with_duplicates_and_late_events_lands_exactly_once(tmp_path: Path) -> None:
    stream = generate(Mix(prefix="base", events=400))
    with pipeline(tmp_path) as pipe:
        expect = getattr(pipe.target, "expect", None)
        if expect:
            expect(list(stream.unique.values()))
        sent = pipe.send(stream.sent)
        pipe.settle(90, len(stream.unique))
        check = pipe.target.check(list(stream.unique.values()))
        summary = summarise("no faults (reference)", pipe, stream, sent, check)
        record(summary)
        assert summary.deduplicated == stream.duplicates
        assert_exactly_once(summary, check)
