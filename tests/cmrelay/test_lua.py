"""The Lua loader: each script's declared KEYS/ARGV names are what its body and callers use."""

from __future__ import annotations

import re

import pytest

from cmrelay.lua import parse_signature, script_file, script_names

_INDEX = re.compile(r"\b(KEYS|ARGV)\[(\d+)\]")


def test_a_header_names_fixed_and_repeated_keys_and_arguments() -> None:
    sig = parse_signature(
        "-- KEYS: a, b (a note, with a comma),\n--       ... per item: c\n"
        "-- ARGV: x,\n--       y ... per item: z, w\nreturn 1\n"
    )
    assert (sig.keys, sig.args, sig.item_keys, sig.item_args) == (
        ("a", "b"), ("x", "y"), ("c",), ("z", "w"),
    )  # fmt: skip


@pytest.mark.parametrize("name", script_names())
def test_every_script_declares_what_its_body_indexes(name: str) -> None:
    file = script_file(name)
    used: dict[str, int] = {"KEYS": 0, "ARGV": 0}
    for kind, index in _INDEX.findall(file.source):
        used[kind] = max(used[kind], int(index))
    sig = file.signature
    assert sig.keys, f"{name}.lua declares no KEYS"
    for kind, fixed, repeated in (
        ("KEYS", sig.keys, sig.item_keys),
        ("ARGV", sig.args, sig.item_args),
    ):
        if repeated:  # indexed past the fixed names, one group at a time
            assert used[kind] >= len(fixed)
        else:
            assert used[kind] == len(fixed), f"{name}.lua {kind}: uses {used[kind]}, names {fixed}"


def test_a_call_with_a_missing_or_unknown_name_is_refused() -> None:
    file = script_file("due_claim")
    keys = {"due": "k", "due_live": "h"}
    args = {"limit": 1, "live_limit": 3, "claim_seconds": 2}
    assert file.order(keys, args) == (["k", "h"], [1, 3, 2])
    with pytest.raises(
        ValueError,
        match=r"ARGV: missing \['claim_seconds', 'limit', 'live_limit'\], unknown \['limt'\]",
    ):
        file.order(keys, {"limt": 1})
