"""The string formats Segment's action validation checks (pure): email, uri, uri-reference, and
the `date-like` format of its datetime fields.

actions-core validates with Ajv and ajv-formats 2.1.1 in "full" mode; `date-like` is its own
format: a string dayjs can parse, or epoch seconds spelled as a number. The email and URI rules
are written here from RFC 3986 and the published format behaviour, and were checked against
that library; date-like follows JavaScript's Date, approximated for non-ISO text (docs/mapping.md).
"""

from __future__ import annotations

import math
import re

from worker.delivery.webhook.js import js_number_text

_FLAGS = re.ASCII | re.IGNORECASE  # JavaScript's /i without /u: ASCII case folding only

# --- email: dot-atoms @ two or more DNS labels --------------------------------------------
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_LABEL}", _FLAGS)


def is_email(text: str) -> bool:
    """ajv-formats `email` (full mode)."""
    return _EMAIL.fullmatch(text) is not None


# --- uri / uri-reference (RFC 3986 with ajv-formats' own allowances) -----------------------
_PCT = r"%[0-9a-f]{2}"


def _chars(extra: str) -> str:
    """unreserved + sub-delims + `extra`, or a percent escape."""
    return rf"(?:[a-z0-9\-._~!$&'()*+,;={extra}]|{_PCT})"


def _uri_pattern(*, quote: str, scheme_optional: bool) -> re.Pattern[str]:
    # uri-reference in ajv-formats 2.1.1 also admits `"` in host, path, query and fragment.
    userinfo = _chars(":")
    host = rf"(?:\[(?P<ip>[^\[\]]*)\]|{_chars(quote)}*)"
    pchar = _chars(f":@{quote}")
    authority_path = rf"/?/(?:{userinfo}*@)?{host}(?::[0-9]*)?(?:/{pchar}*)*"
    absolute = rf"/(?:{pchar}+(?:/{pchar}*)*)?"
    rootless = rf"{pchar}+(?:/{pchar}*)*"
    hier = rf"(?:{authority_path}|{absolute}|{rootless})"
    tail = rf"(?:\?(?:{pchar}|[/?])*)?(?:#(?:{pchar}|[/?])*)?"
    scheme = r"[a-z][a-z0-9+\-.]*:"
    if scheme_optional:
        return re.compile(rf"(?:{scheme})?{hier}?{tail}", _FLAGS)
    return re.compile(rf"{scheme}{hier}{tail}", _FLAGS)


_URI = _uri_pattern(quote="", scheme_optional=False)
_URI_REFERENCE = _uri_pattern(quote='"', scheme_optional=True)
_IP_FUTURE = re.compile(r"v[0-9a-f]+\.[a-z0-9\-._~!$&'()*+,;=:]+", _FLAGS)
_H16 = re.compile(r"[0-9a-f]{1,4}", _FLAGS)
_OCTET = re.compile(r"25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?")
_IPV6_GROUPS = 8


def _groups(part: str, *, v4_allowed: bool) -> int | None:
    """How many 16-bit groups a ':'-separated run spells (an IPv4 tail counts two)."""
    if part == "":
        return 0
    pieces = part.split(":")
    count = 0
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        if last and v4_allowed and "." in piece:
            octets = piece.split(".")
            if len(octets) != 4 or not all(_OCTET.fullmatch(o) for o in octets):
                return None
            count += 2
        elif _H16.fullmatch(piece):
            count += 1
        else:
            return None
    return count


def _ip_literal(text: str) -> bool:
    """An IPv6 address (RFC 3986 IPv6address) or an IPvFuture, as inside [ ]."""
    if _IP_FUTURE.fullmatch(text):
        return True
    if text.count("::") > 1:
        return False
    if "::" in text:
        head, tail = text.split("::")
        left = _groups(head, v4_allowed=False)
        right = _groups(tail, v4_allowed=True)
        return left is not None and right is not None and left + right <= _IPV6_GROUPS - 1
    return _groups(text, v4_allowed=True) == _IPV6_GROUPS


def _uri_like(pattern: re.Pattern[str], text: str) -> bool:
    match = pattern.fullmatch(text)
    if match is None:
        return False
    ip = match.group("ip")
    return ip is None or _ip_literal(ip)


def is_uri(text: str) -> bool:
    """ajv-formats `uri` (full mode): an absolute URI; `linked_in` uses it."""
    return _uri_like(_URI, text)


def is_uri_reference(text: str) -> bool:
    """ajv-formats `uri-reference` (full mode, 2.1.1): `website` uses it; very permissive."""
    return _uri_like(_URI_REFERENCE, text)


# --- date-like ---------------------------------------------------------------------------
_MAX_DATE_MS = 8.64e15  # ECMAScript's time value range
# dayjs reads "YYYY[-/]M[-/]D[T ]H:m:s.ms" (any part optional) through `new Date(y, m, ...)`.
_DAYJS = re.compile(
    r"""(?P<year>[0-9]{4}) [-/]? (?:[0-9]{1,2})? [-/]? [0-9]{0,2} [Tt\s]*
        (?:[0-9]{1,2})? :? (?:[0-9]{1,2})? :? (?:[0-9]{1,2})? [.:]? (?:[0-9]+)?""",
    re.ASCII | re.VERBOSE,
)
_ES_ISO = re.compile(
    r"""(?:[+-][0-9]{6}|[0-9]{4}) (?:-(?P<mo>[0-9]{2}) (?:-(?P<d>[0-9]{2}))?)?
        (?:[Tt] (?P<h>[0-9]{2}) : (?P<mi>[0-9]{2}) (?::(?P<s>[0-9]{2}) (?:\.[0-9]+)?)?)?
        (?:[Zz]|[+-][0-9]{2}:[0-9]{2})?""",
    re.ASCII | re.VERBOSE,
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_ZONE_WORDS = frozenset({"ut", "utc", "gmt", "z", "t", "est", "edt", "cst", "cdt", "mst", "mdt"})
_ZONE_WORDS |= {"pst", "pdt"}
_TOKEN = re.compile(r"[0-9]+|[A-Za-z]+|.", re.ASCII | re.DOTALL)
_PARENS = re.compile(r"\([^()]*\)")
_LEGACY_CHARS = re.compile(r"[A-Za-z0-9\s,.:/+-]*", re.ASCII)
_MAX_HOUR, _MAX_MINUTE, _MAX_DAY, _MAX_MONTH, _SHORT_WORD = 24, 59, 31, 12, 3


def _epoch_text(text: str) -> bool | None:
    """For text that is String(Number(text)): whether dayjs.unix reads it; None otherwise."""
    if text == "NaN":
        return False
    if not re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]+)?", text, re.ASCII):
        return None
    number = float(text)
    if not math.isfinite(number) or js_number_text(number) != text:
        return None
    return abs(number * 1000) <= _MAX_DATE_MS


def _iso_ok(match: re.Match[str]) -> bool:
    def within(name: str, low: int, high: int) -> bool:
        value = match.group(name)
        return value is None or low <= int(value) <= high

    return (
        within("mo", 1, _MAX_MONTH)
        and within("d", 1, _MAX_DAY)
        and within("h", 0, _MAX_HOUR)
        and within("mi", 0, _MAX_MINUTE)
        and within("s", 0, _MAX_MINUTE)
    )


def _known_word(word: str) -> bool:
    low = word.lower()
    return (len(low) >= _SHORT_WORD and low[:3] in _MONTHS) or low in _ZONE_WORDS


def _legacy_date(text: str) -> bool:
    """An approximation of V8's fallback Date parser: words, numbers, times and zones."""
    bare = _PARENS.sub(" ", text)
    first = next((i for i, ch in enumerate(bare) if "0" <= ch <= "9"), len(bare))
    # Before the first number V8 skips symbols it does not know; after it, far fewer.
    if not _LEGACY_CHARS.fullmatch(bare, first):
        return False
    lead = re.sub(r"[^A-Za-z]+", " ", bare[:first])
    pieces = _TOKEN.findall(lead + bare[first:])
    days: list[str] = []
    times: list[int] = []
    named_month = meridian = in_offset = False
    for index, piece in enumerate(pieces):
        before = pieces[index - 1] if index else ""
        after = pieces[index + 1] if index + 1 < len(pieces) else ""
        if piece.isalpha():
            low = piece.lower()
            if low in ("am", "pm"):
                meridian = True
            elif not _known_word(piece):
                if days or times or len(piece) < _SHORT_WORD:
                    return False  # unknown words count only before the first number
                continue
            named_month = named_month or low[:3] in _MONTHS
            in_offset = False
        elif piece.isdigit():
            if in_offset:
                continue
            if after == ":" or before == ":" or (before == "." and len(times) == 3):
                times.append(int(piece) if before != "." else 0)
            else:
                days.append(piece)
        elif piece == ":" and not before.isdigit():
            return False  # a colon only separates the parts of a time
        elif piece in "+-" and times:
            in_offset = True  # a zone offset follows a time: +0100, -05:00
    return _compose(days, times, named_month=named_month, meridian=meridian)


def _compose(days: list[str], times: list[int], *, named_month: bool, meridian: bool) -> bool:
    hour, minute, second = [*times, 0, 0, 0][:3]
    time_ok = hour <= _MAX_HOUR and minute <= _MAX_MINUTE and second <= _MAX_MINUTE
    if not time_ok or (meridian and (not times or hour > _MAX_MONTH)):
        return False
    return _date_numbers_ok([int(d) for d in days], days, named_month=named_month)


def _date_numbers_ok(numbers: list[int], days: list[str], *, named_month: bool) -> bool:
    """1-3 date numbers (2 at most with a month name): month/day order and ranges."""
    year_first = bool(days) and (len(days[0]) >= 3 or numbers[0] > _MAX_DAY)
    if len(numbers) == 1:
        return True
    if named_month or len(numbers) != 3:
        if len(numbers) != 2:
            return False
        if named_month:
            return 1 <= (numbers[1] if year_first else numbers[0]) <= _MAX_DAY
        return year_first or (1 <= numbers[0] <= _MAX_MONTH and 1 <= numbers[1] <= _MAX_DAY)
    month, day = (numbers[1], numbers[2]) if year_first else (numbers[0], numbers[1])
    return 1 <= month <= _MAX_MONTH and 1 <= day <= _MAX_DAY


def is_date_like(text: str) -> bool:
    """actions-core's `date-like`: epoch-number text, or a string dayjs / Date can read."""
    epoch = _epoch_text(text)
    if epoch is not None:
        return epoch
    if not text.endswith(("Z", "z")) and _DAYJS.fullmatch(text):
        return True
    iso = _ES_ISO.fullmatch(text)
    if iso is not None and _iso_ok(iso):
        return True
    return _legacy_date(text)
