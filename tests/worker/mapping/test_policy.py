"""The mapping overrides file: the example loads, mistakes stop start-up with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmrelay.errors import ConfigurationError
from cmrelay.settings import Settings
from worker.mapping.policy import MappingPolicy, load_mapping_policy, parse_overrides

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "mapping.example.toml"


def test_no_file_gives_the_default_policy_with_company_creation() -> None:
    assert load_mapping_policy(Settings(company_creation="group")) == MappingPolicy(
        company_creation="group"
    )


def test_the_example_file_loads() -> None:
    policy = load_mapping_policy(Settings(mapping_file=str(EXAMPLE)))
    assert policy.group.rename
    assert policy.group.types
    assert policy.group.ignore
    assert policy.identify.standard


def test_a_mapping_table_inside_relay_toml_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[mapping.group.types]\nemployees = "Integer"\n')
    policy = load_mapping_policy(Settings(mapping_file=str(path)))
    assert policy.group.types == {"employees": "Integer"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[group.types]\nx = "Float"', "is not one of"),
        ('[group.rename]\nx = "has space"', "is not a key"),
        ('[group.standard]\nx = "first_name"', "is not one of"),
        ('[identify.standard]\nx = "website_url"', "is not one of"),
        ("[track]\nx = 1", "unknown section"),
        ('[group]\nignore = "x"', "must be a list"),
        ("[group]\nrenames = {}", "unknown key"),
        ("not toml ===", "not valid TOML"),
    ],
)
def test_mistakes_are_configuration_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_mapping_policy(Settings(mapping_file=str(path)))


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="MAPPING_FILE"):
        load_mapping_policy(Settings(mapping_file=str(tmp_path / "absent.toml")))


def test_ignore_covers_nested_traits() -> None:
    overrides = parse_overrides({"group": {"ignore": ["internal"]}})["group"]
    assert overrides.ignores("internal")
    assert overrides.ignores("internal.score")
    assert not overrides.ignores("internal_score")
