"""Narrowing a refused attribute batch down to the bad attributes (pure: a scripted server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import pytest

from cmrelay.errors import PermanentDeliveryError, RetryableDeliveryError
from worker.delivery.api.writes import write_attributes
from worker.mapping import AttrType, CustomAttribute


class Server:
    """Refuses a batch holding any key `verdict` objects to, the way `verdict` words it."""

    def __init__(self, verdict: Callable[[CustomAttribute], Mapping[str, str] | None]) -> None:
        self.verdict = verdict
        self.calls: list[list[str]] = []
        self.stored: dict[str, object] = {}
        self.learned: dict[str, AttrType] = {}

    def send(self, batch: list[CustomAttribute]) -> None:
        self.calls.append([a.key for a in batch])
        for attr in batch:
            errors = self.verdict(attr)
            if errors is not None:
                body = json.dumps({"errors": errors})
                raise PermanentDeliveryError("refused", status=422, body=body)
        self.stored.update({a.key: a.value for a in batch})

    def learn(self, types: Mapping[str, AttrType]) -> None:
        self.learned.update(types)


def _attrs(*items: tuple[str, AttrType, object]) -> list[CustomAttribute]:
    return [CustomAttribute(k, t, v) for k, t, v in items]


def test_the_happy_path_is_one_call() -> None:
    server = Server(lambda a: None)
    done = write_attributes(server.send, _attrs(("a", "String", "x"), ("b", "Integer", 1)),
                            server.learn)  # fmt: skip
    assert server.calls == [["a", "b"]] and not done.dropped
    assert server.stored == {"a": "x", "b": 1}


def test_a_named_key_is_fitted_to_the_type_named_and_the_batch_sent_again() -> None:
    decimal = {"custom.score": "Attribute already exists with type Decimal."}
    server = Server(lambda a: decimal if a.key == "score" and a.type != "Decimal" else None)
    done = write_attributes(server.send, _attrs(("score", "Integer", 3), ("b", "String", "y")),
                            server.learn)  # fmt: skip
    assert server.stored == {"score": 3.0, "b": "y"} and not done.dropped
    assert len(server.calls) == 2 and server.learned == {"score": "Decimal"}


def test_a_key_that_cannot_fit_is_dropped_and_the_rest_written() -> None:
    integer = {"custom.seats": "Attribute already exists with type Integer."}
    server = Server(lambda a: integer if a.key == "seats" else None)
    done = write_attributes(server.send, _attrs(("seats", "String", "many"), ("b", "String", "y")),
                            server.learn)  # fmt: skip
    assert server.stored == {"b": "y"}
    assert [(d.field, "Integer" in d.reason) for d in done.dropped] == [("seats", True)]
    assert len(server.calls) == 2


def test_a_refusal_naming_no_key_is_narrowed_down_by_halving() -> None:
    vague = {"base": "Something is wrong with the attributes."}
    bad = {"k3", "k6"}
    server = Server(lambda a: vague if a.key in bad else None)
    attrs = _attrs(*((f"k{i}", "String", str(i)) for i in range(8)))
    done = write_attributes(server.send, attrs, server.learn)
    assert set(server.stored) == {f"k{i}" for i in range(8)} - bad
    assert sorted(d.field for d in done.dropped) == ["k3", "k6"]
    assert len(server.calls) <= 2 * len(attrs) + 2


def test_a_key_refused_again_after_fitting_is_dropped_not_looped() -> None:
    server = Server(lambda a: {"custom.x": "Attribute already exists with type Decimal."}
                    if a.key == "x" else None)  # fmt: skip
    done = write_attributes(server.send, _attrs(("x", "Integer", 2), ("y", "Boolean", True)),
                            server.learn)  # fmt: skip
    assert server.stored == {"y": True} and [d.field for d in done.dropped] == ["x"]
    assert len(server.calls) == 3


def test_errors_that_are_not_attribute_refusals_propagate() -> None:
    def send(batch: list[CustomAttribute]) -> None:
        raise RetryableDeliveryError("503", status=503)

    with pytest.raises(RetryableDeliveryError):
        write_attributes(send, _attrs(("a", "String", "x")), lambda t: None)

    def gone(batch: list[CustomAttribute]) -> None:
        raise PermanentDeliveryError("404", status=404, body='{"message": "Customer not found"}')

    with pytest.raises(PermanentDeliveryError):
        write_attributes(gone, _attrs(("a", "String", "x")), lambda t: None)
