"""Country values to ISO 3166-1 alpha-2, which is all the ChartMogul API accepts."""

from __future__ import annotations

from functools import lru_cache

import pycountry

# Names people (and Segment sources) commonly send that are not ISO names or codes.
_ALIASES = {
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "russia": "RU",
    "turkey": "TR",
    "ivory coast": "CI",
    "macedonia": "MK",
    "brasil": "BR",
    "holland": "NL",
    "the netherlands": "NL",
    "korea": "KR",
    "deutschland": "DE",
    "america": "US",
    "u.s.": "US",
    "u.s.a.": "US",
    "uae": "AE",
}
# Longer inputs are not country names; don't spend a lookup on them.
_MAX_LEN = 80


@lru_cache(maxsize=4096)
def country_code(value: str) -> str | None:
    """The alpha-2 code for an alpha-2, alpha-3, numeric code or name (any case); else None."""
    text = " ".join(value.split())
    if not text or len(text) > _MAX_LEN:
        return None
    alias = _ALIASES.get(text.lower())
    if alias:
        return alias
    try:
        country = pycountry.countries.lookup(text)
    except LookupError:
        return None
    return str(country.alpha_2)
