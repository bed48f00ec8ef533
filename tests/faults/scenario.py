"""Run one fault scenario: send the stream while a fault script runs, settle, check, report."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .pipeline import Pipeline, SendResult, make_target, pipeline
from .report import Summary, assert_exactly_once, record, summarise
from .stream import Mix, Stream, generate
from .targets import StateCheck

FaultScript = Callable[[Pipeline, threading.Event], str]  # returns notes for the table


def run_scenario(
    tmp: Path, name: str, fault: FaultScript, *, mix: Mix | None = None, settle: float = 120,
    pace: float = 0.0, latency: float = 0.0, target_kind: str | None = None, **kwargs: Any,
) -> tuple[Summary, StateCheck, Pipeline]:  # fmt: skip
    """Send `mix` (paced) while `fault` runs in this thread; the promise must hold afterwards."""
    stream = generate(mix or Mix(prefix=name.split(maxsplit=1)[0]))
    with pipeline(tmp, make_target(latency, target_kind), **kwargs) as pipe:
        expect = getattr(pipe.target, "expect", None)
        if expect:
            expect(list(stream.unique.values()))
        sent, errors, sending = _send_in_background(pipe, stream, pace)
        notes = fault(pipe, sending)
        sending.wait(300)
        if errors:
            raise errors[0]
        pipe.settle(settle, len(stream.unique))
        check = pipe.target.check(list(stream.unique.values()))
        summary = summarise(name, pipe, stream, sent, check, notes=notes)
        record(summary)
        assert summary.deduplicated >= stream.duplicates, summary
        assert_exactly_once(summary, check)
        return summary, check, pipe


def _send_in_background(
    pipe: Pipeline, stream: Stream, pace: float
) -> tuple[SendResult, list[BaseException], threading.Event]:
    result, errors, done = SendResult(), [], threading.Event()
    pipe.sending = result

    def send() -> None:
        try:
            pipe.send(stream.sent, batch=20, pace=pace, result=result, deadline=240)
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=send, daemon=True, name="faults-sender").start()
    return result, errors, done
