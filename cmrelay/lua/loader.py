"""The relay's Lua scripts (files beside this module), each with the KEYS/ARGV names it declares.

Every script's header names its keys and arguments (`-- KEYS: a, b` and `-- ARGV: x, y`, with an
optional `... per item: p, q` tail for repeated groups). Callers pass values by those names and
the loader puts them in the script's order, refusing a missing or unknown name: a call site reads
as what it means, and a script and its callers cannot drift apart silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent
_HEADER = re.compile(r"^--\s*(KEYS|ARGV):(.*)$")
_CONTINUATION = re.compile(r"^--\s{3,}(.*)$")
_NOTE = re.compile(r"\([^)]*\)")


@dataclass(frozen=True)
class Signature:
    """The names of a script's KEYS and ARGV, fixed ones first, then one repeated group each."""

    keys: tuple[str, ...]
    args: tuple[str, ...]
    item_keys: tuple[str, ...] = ()
    item_args: tuple[str, ...] = ()


def _names(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    fixed, _, repeated = _NOTE.sub("", text).partition("...")
    repeated = repeated.partition(":")[2] if repeated else ""

    def split(part: str) -> tuple[str, ...]:
        return tuple(name.strip() for name in part.split(",") if name.strip())

    return split(fixed), split(repeated)


def parse_signature(source: str) -> Signature:
    """The KEYS/ARGV names declared in a script's leading comments."""
    sections: dict[str, str] = {}
    current: str | None = None
    for line in source.splitlines():
        header = _HEADER.match(line)
        more = _CONTINUATION.match(line)
        if header:
            current = header.group(1)
            sections[current] = header.group(2)
        elif current and more:
            sections[current] += " " + more.group(1)
        else:
            current = None
    keys, item_keys = _names(sections.get("KEYS", ""))
    args, item_args = _names(sections.get("ARGV", ""))
    return Signature(keys, args, item_keys, item_args)


@dataclass(frozen=True)
class ScriptFile:
    """One script's source and signature."""

    name: str
    source: str
    signature: Signature

    def order(
        self,
        keys: Mapping[str, str],
        args: Mapping[str, Any],
        items: Sequence[tuple[Mapping[str, str], Mapping[str, Any]]] = (),
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV in the script's order; ValueError naming any mismatch."""
        sig = self.signature
        key_list = self._ordered("KEYS", sig.keys, keys)
        arg_list = self._ordered("ARGV", sig.args, args)
        for item_keys, item_args in items:
            key_list += self._ordered("item KEYS", sig.item_keys, item_keys)
            arg_list += self._ordered("item ARGV", sig.item_args, item_args)
        return key_list, arg_list

    def _ordered(self, what: str, names: tuple[str, ...], given: Mapping[str, Any]) -> list[Any]:
        if set(given) != set(names):
            missing, extra = sorted(set(names) - set(given)), sorted(set(given) - set(names))
            raise ValueError(f"{self.name}.lua {what}: missing {missing}, unknown {extra}")
        return [given[name] for name in names]


@cache
def script_file(name: str) -> ScriptFile:
    """The script `<name>.lua`, read once per process."""
    source = (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")
    return ScriptFile(name, source, parse_signature(source))


def script_names() -> list[str]:
    """Every script shipped with the relay."""
    return sorted(path.stem for path in LUA_DIR.glob("*.lua"))
