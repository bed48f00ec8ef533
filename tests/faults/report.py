"""One summary row per fault scenario: printed, and kept in docs/reliability.md."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .pipeline import Pipeline, SendResult
from .stream import Stream
from .targets import StateCheck

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
HEADER = (
    "| scenario | target | sent | unique | delivered | deduplicated | dead-lettered | lost "
    "| dup. customers | dup. contacts | mismatches | client retries | API answers | notes |"
)
BEGIN, END = "<!-- fault-results:begin -->", "<!-- fault-results:end -->"


@dataclass
class Summary:
    """What one scenario did, by the relay's own counters and by the target's final state."""

    scenario: str
    target: str
    sent: int
    unique: int
    delivered: int
    deduplicated: int
    dead_lettered: int
    lost: int
    duplicate_customers: int
    duplicate_contacts: int
    mismatches: int
    client_retries: int
    api_answers: str
    notes: str = ""

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.target} | {self.sent} | {self.unique} | {self.delivered} "
            f"| {self.deduplicated} | {self.dead_lettered} | {self.lost} "
            f"| {self.duplicate_customers} | {self.duplicate_contacts} | {self.mismatches} "
            f"| {self.client_retries} | {self.api_answers} | {self.notes} |"
        )


def summarise(
    scenario: str, pipe: Pipeline, stream: Stream, sent: SendResult, check: StateCheck, *,
    notes: str = "",
) -> Summary:  # fmt: skip
    """Counters + state check -> the row (lost = unique events neither delivered nor dead)."""
    c = pipe.counters()
    delivered, dead = c.get("delivered", 0) + c.get("unchanged", 0), c.get("dead_lettered", 0)
    answers = pipe.target.calls()
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(answers.items()))
    return Summary(
        scenario=scenario, target=pipe.target.name, sent=len(stream.sent),
        unique=len(stream.unique), delivered=delivered, deduplicated=c.get("duplicate", 0),
        dead_lettered=dead, lost=max(0, len(stream.unique) - delivered - dead),
        duplicate_customers=check.duplicate_customers,
        duplicate_contacts=check.duplicate_contacts, mismatches=len(check.mismatches),
        client_retries=sent.retries,
        api_answers=shown, notes=notes,
    )  # fmt: skip


def record(summary: Summary) -> None:
    """Print the row and replace this scenario's row in docs/reliability.md."""
    print(f"\n{HEADER}\n{summary.row()}")
    text = DOC.read_text() if DOC.exists() else f"{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    rows = [
        r
        for r in body.strip().splitlines()
        if r.startswith("| ") and not r.startswith("| scenario")
    ]
    rows = [r for r in rows if not re.match(rf"\| {re.escape(summary.scenario)} \|", r)]
    rows.append(summary.row())
    sep = "|" + "---|" * HEADER.count(" | ") + "---|"
    table = "\n".join([HEADER, sep, *sorted(rows)])
    DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


def assert_exactly_once(summary: Summary, check: StateCheck) -> None:
    """The promise: nothing lost, nothing doubled, the final state as expected."""
    assert check.mismatches == [], "\n".join(check.mismatches[:10])
    assert summary.lost == 0, summary
    assert summary.duplicate_customers == 0 and summary.duplicate_contacts == 0, summary
    assert summary.delivered + summary.dead_lettered == summary.unique, summary
