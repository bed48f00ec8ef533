"""The README is the user's manual: its configuration table must name every setting."""

from __future__ import annotations

import re
from pathlib import Path

from cmrelay.settings import _FIELDS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README.read_text(), flags=re.M))
    missing = sorted(set(_FIELDS) - documented)
    assert missing == []


def test_readme_gives_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "make run" in text
    assert "make test" in text
