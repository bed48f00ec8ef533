"""Text output of `cmrelay dlq`: tables, the stats report, one entry in detail, progress."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import orjson

from cmrelay.dlq.follow import Progress
from cmrelay_cli.progress import bar, duration, eta

LIST_COLUMNS = (
    ("id", 32),
    ("dead_lettered_at", 20),
    ("reason", 20),
    ("status", 8),
    ("status_code", 4),
    ("entity", 28),
    ("events", 6),
    ("attempts", 8),
    ("last_error", 60),
)


# Characters a terminal acts on rather than shows, which event data (userId, messageId, traits,
# a ChartMogul answer) can carry: C0 (ESC starts OSC/CSI sequences, CR rewrites the line), DEL,
# C1 (0x9b is an 8-bit CSI), bidi overrides and isolates (they reorder what the operator reads),
# and the Unicode line/paragraph separators. Each is shown as its Python escape instead.
_UNSAFE = [*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
           *range(0x2066, 0x206A), 0x2028, 0x2029]  # fmt: skip
_ESCAPES = {code: repr(chr(code))[1:-1] for code in _UNSAFE}
_ESCAPES_KEEPING_LINES = {code: text for code, text in _ESCAPES.items() if code != 0x0A}


def safe(value: Any, *, keep_newlines: bool = False) -> str:
    """`value` as text a terminal cannot be steered by: control and bidi characters escaped."""
    return str(value).translate(_ESCAPES_KEEPING_LINES if keep_newlines else _ESCAPES)


def _cell(value: Any, width: int) -> str:
    text = "-" if value is None else safe(str(value).replace("\n", " "))
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, int]]) -> str:
    """Fixed-width columns; long values are cut with an ellipsis, the last column is not padded."""
    widths = [
        max([len(name)] + [len(_cell(r.get(name), limit)) for r in rows]) for name, limit in columns
    ]
    lines = []
    for values in [[name for name, _ in columns]] + [[r.get(n) for n, _ in columns] for r in rows]:
        cells = [_cell(v, w).ljust(w) for v, w in zip(values, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def stats_text(stats: Mapping[str, Any]) -> str:
    """The `cmrelay dlq stats` report."""
    out = [
        f"dead letters: {stats['dead']} still dead"
        f" ({stats['total'] - stats['dead']} replayed, {stats['total']} kept)",
        f"oldest: {_age(stats['oldest_age_seconds'])} ago" if stats["total"] else "oldest: -",
    ]
    for title, key in (
        ("by reason", "by_reason"),
        ("by status", "by_status"),
        ("by HTTP status", "by_status_code"),
        ("by error class", "by_error_class"),
        ("by age", "by_age"),
    ):
        out.append(f"\n{title}:")
        counts: Mapping[str, int] = stats[key]
        if not counts:
            out.append("  (none)")
        width = max((len(safe(k)) for k in counts), default=0)
        out += [f"  {safe(k).ljust(width)}  {v}" for k, v in counts.items()]
    return "\n".join(out)


def show_text(view: Mapping[str, Any]) -> str:
    """One entry in detail: header, original events, planned operations, attempts, response."""
    header = [
        ("id", view["id"]),
        ("entity", view["entity"]),
        ("status", view["status"]),
        ("reason", view["reason"]),
        ("error class", view["error_class"]),
        ("HTTP status", view["status_code"] if view["status_code"] is not None else "-"),
        ("attempts", view["attempts"]),
        ("first attempt", view["first_attempt_at"]),
        ("dead-lettered", view["dead_lettered_at"]),
        ("message ids", ", ".join(view["message_ids"])),
        ("last error", view["last_error"]),
    ]
    out = [f"{name + ':':15}{safe(value)}" for name, value in header]
    out.append(f"\nevents ({len(view['events'])}):")
    out += [_indent(_pretty(e)) for e in view["events"]]
    out.append(f"\nplanned operations ({len(view['planned_operations'])}):")
    out += [_indent(_pretty(op)) for op in view["planned_operations"]] or ["  (none recorded)"]
    out.append(f"\nattempts ({len(view['history'])} recorded):")
    cols = (("at", 20), ("error_class", 28), ("status_code", 4), ("error", 80))
    out.append(_indent(table(view["history"], cols)) if view["history"] else "  (none recorded)")
    out.append("\nlast response:")
    out.append(_indent(safe(view["last_response"] or "(no body)", keep_newlines=True)))
    return "\n".join(out)


def _pretty(value: Any) -> str:
    # orjson already writes C0 controls inside strings as \u00XX; its only raw newlines are its
    # own indentation, so they are kept. DEL, C1 and bidi characters it leaves raw: escaped here.
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return safe(text, keep_newlines=True)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


class ProgressBar:
    """A one-line bar on a terminal; silent when the stream is not a TTY (logs, pipes, CI)."""

    def __init__(self, stream: TextIO, label: str, width: int = 30) -> None:
        self._stream, self._label, self._width = stream, label, width
        self.enabled = stream.isatty()
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total == 0:
            return
        filled = self._width * done // total
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{total}")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line so that later output starts on a fresh one."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def follow_line(progress: Progress, with_bar: bool) -> str:
    """Where `dlq replay --wait` stands: events done of total, delivered, dead, waiting, rate."""
    kinds = progress.kinds
    done = kinds["done"] + kinds["dead"]
    rate = done / progress.elapsed if progress.elapsed > 0 else 0.0
    head = f"{bar(done, progress.events)} " if with_bar else ""
    return (
        f"{head}{done}/{progress.events} events: delivered {kinds['done']}, "
        f"dead again {kinds['dead']}, waiting {kinds['waiting'] + kinds['unknown']}  "
        f"{rate:,.1f}/s  ETA {duration(eta(done, progress.events, progress.elapsed))}"
    )


def follow_summary_text(summary: Mapping[str, Any]) -> str:
    """The closing lines of `dlq replay --wait` (stderr; stdout gets the JSON)."""
    states = summary["by_state"]
    lines = [
        f"followed {summary['entries']} entries ({summary['events']} events) for "
        f"{duration(summary['seconds'])}: {states['delivered']} delivered, "
        f"{states['dead'] + states['mixed']} dead again, "
        f"{states['waiting'] + states['unknown']} without an outcome"
        + (" (timed out)" if summary["timed_out"] else "")
    ]
    lines += [f"dead again: {entry_id}" for entry_id in summary["dead_again"]]
    lines += [f"new dead letter: {entry_id}" for entry_id in summary["new_dead_letters"]]
    return "\n".join(lines)
