"""JavaScript's spelling of values (pure): String(number) and JSON.stringify, as Segment's
Node.js runtime writes them."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_SAFE_INTEGER = 2**53  # beyond it a JSON number is a rounded double in JavaScript


def js_number_text(value: float) -> str:
    """Number#toString for a finite double: the shortest round-trip digits by JS's layout."""
    if value == 0:
        return "0"  # -0 too
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    if not isinstance(exponent, int):  # NaN/Infinity: callers never pass them
        return "NaN"
    all_digits = "".join(map(str, digit_tuple))
    point = len(all_digits) + exponent  # value = 0.<digits> * 10**point
    digits = all_digits.rstrip("0") or "0"
    k, n, minus = len(digits), point, "-" if sign else ""
    if k <= n <= 21:
        return minus + digits + "0" * (n - k)
    if 0 < n <= 21:
        return minus + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return minus + "0." + "0" * (-n) + digits
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{minus}{head}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


def js_number(value: int | float) -> str:
    """String(n) for a JSON number as JavaScript holds it (big integers are doubles there)."""
    if isinstance(value, int) and abs(value) < _SAFE_INTEGER:
        return str(value)
    return js_number_text(float(value))


_JS_SPACE = " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
_JS_SPACE += "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_DECIMAL = re.compile(
    r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.ASCII
)
_RADIX = re.compile(r"0(?:[xX](?P<x>[0-9a-fA-F]+)|[oO](?P<o>[0-7]+)|[bB](?P<b>[01]+))", re.ASCII)


def js_to_number(text: str) -> int | float | None:
    """Number(text) for a string, or None where JavaScript gets NaN."""
    body = text.strip(_JS_SPACE)
    if body == "":
        return 0
    if _DECIMAL.fullmatch(body):
        number = float(body.replace("Infinity", "inf"))
        return int(number) if number.is_integer() and abs(number) < _SAFE_INTEGER else number
    radix = _RADIX.fullmatch(body)
    if radix:
        base = {"x": 16, "o": 8, "b": 2}[radix.lastgroup or "x"]
        return int(radix.group(radix.lastgroup or "x"), base)
    return None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        items = (f"{_text(str(k))}:{_text(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return js_number(value) if not isinstance(value, float) or math.isfinite(value) else "null"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        # JSON.stringify escapes lone surrogates (well-formed stringify, ES2019).
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return "null"


def stringify(value: Any) -> bytes:
    """JSON.stringify(value) as UTF-8 bytes: compact, keys in order, non-ASCII kept."""
    return _text(value).encode("utf-8")
