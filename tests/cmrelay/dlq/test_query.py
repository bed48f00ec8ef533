"""Operator filters are checked against the values that exist, never silently match nothing."""

from __future__ import annotations

import pytest

from cmrelay.dlq.entry import REASON_EXPIRED
from cmrelay.dlq.query import build_filter
from cmrelay.errors import InvalidQueryError


def test_known_reasons_and_prefixed_entities_pass() -> None:
    f = build_filter({"reason": REASON_EXPIRED, "entity": "customer:acme"}, now=0.0)
    assert (f.reason, f.entity) == (REASON_EXPIRED, "customer:acme")


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"reason": "expired"}, "reason must be one of"),
        ({"entity": "acme"}, "customer:<external id>"),
        ({"status": "gone"}, "status must be"),
        ({"colour": "red"}, "unknown filter"),
    ],
)
def test_a_filter_that_could_match_nothing_is_refused_by_name(
    params: dict[str, str], says: str
) -> None:
    with pytest.raises(InvalidQueryError, match=says):
        build_filter(params, now=0.0)
