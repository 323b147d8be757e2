"""The tap's settings, meltano.yml and .secrets.example declare the same settings and defaults."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from singer_sdk.helpers import capabilities as sdk_capabilities

from tap_spaaza_users.tap import TapSpaazaUsers

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "TAP_SPAAZA_USERS_"


def sdk_builtin_settings() -> set[str]:
    """Return every setting the SDK adds by itself (stream maps, flattening, batch, ...)."""
    names: set[str] = set()
    for value in vars(sdk_capabilities).values():
        if isinstance(value, dict) and isinstance(value.get("properties"), dict):
            names |= set(value["properties"])
    return names


def tap_settings() -> dict[str, dict[str, Any]]:
    """Return the tap's own settings (name → JSON schema), without the SDK's built-ins."""
    properties = TapSpaazaUsers.config_jsonschema["properties"]
    builtin = sdk_builtin_settings()
    return {name: schema for name, schema in properties.items() if name not in builtin}


def meltano_extractor() -> dict[str, Any]:
    """Return the tap-spaaza-users extractor block of meltano.yml."""
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (extractor,) = [
        plugin
        for plugin in project["plugins"]["extractors"]
        if plugin["name"] == "tap-spaaza-users"
    ]
    return cast("dict[str, Any]", extractor)


def meltano_settings() -> dict[str, dict[str, Any]]:
    """Return meltano.yml's settings of the extractor, by name."""
    return {setting["name"]: setting for setting in meltano_extractor()["settings"]}


def secrets_example_values() -> dict[str, str]:
    """Return the values `.secrets.example` sets (its lines not commented out), by setting."""
    text = (PROJECT_ROOT / ".secrets.example").read_text(encoding="utf-8")
    pairs = re.findall(rf"^{ENV_PREFIX}([A-Z0-9_]+)=(.*)$", text, flags=re.MULTILINE)
    return {name.lower(): value for name, value in pairs}


def secrets_example_settings() -> set[str]:
    """Return the settings `.secrets.example` names as `TAP_SPAAZA_USERS_*` variables.

    A variable may be commented out (`# TAP_SPAAZA_USERS_X=...`) when setting it changes what
    is exported; it is still listed.
    """
    text = (PROJECT_ROOT / ".secrets.example").read_text(encoding="utf-8")
    names = re.findall(rf"^(?:# )?{ENV_PREFIX}([A-Z0-9_]+)=", text, flags=re.MULTILINE)
    return {name.lower() for name in names}


def expected_kind(schema: dict[str, Any]) -> str:
    """Return the Meltano setting kind matching a JSON schema property."""
    types = schema.get("type", "string")
    types = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    kind_by_type = {
        "integer": "integer",
        # Meltano 4.4 passes neither `integer` nor `decimal` fractions from the environment;
        # as `string` they reach the tap, which reads them as numbers: see meltano.yml.
        "number": "string",
        "boolean": "boolean",
        "array": "array",
        "object": "object",
    }
    if "enum" in schema:
        return "options"
    if types[0] == "string" and schema.get("format") in {"date-time", "date"}:
        return "date_iso8601"
    return kind_by_type.get(types[0], "string")


def test_sdk_builtin_settings_are_recognised() -> None:
    assert {"stream_maps", "stream_map_config", "faker_config", "batch_config"} <= (
        sdk_builtin_settings()
    )
    assert "flattening_enabled" in sdk_builtin_settings()


def test_tap_meltano_yml_and_secrets_example_declare_the_same_settings() -> None:
    in_tap = set(tap_settings())
    assert {"api_url", "chain_id", "access_token_id", "access_token_secret"} <= in_tap
    # An SDK object setting may be declared by its dotted leaves (batch_config.storage.root).
    declared = {name.split(".")[0] for name in meltano_settings()} - sdk_builtin_settings()
    assert declared == in_tap, "meltano.yml settings differ from tap.py"
    assert secrets_example_settings() == in_tap, ".secrets.example differs from tap.py"


def test_meltano_yml_describes_each_setting_as_the_tap_does() -> None:
    for name, schema in tap_settings().items():
        setting = meltano_settings()[name]
        assert setting["description"] == schema["description"], name
        assert setting["label"].lower() == schema["title"].lower(), name


def test_meltano_yml_defaults_are_the_tap_defaults() -> None:
    for name, schema in tap_settings().items():
        assert meltano_settings()[name].get("value") == schema.get("default"), name


def test_secrets_example_sets_the_defaults_and_comments_out_optional_settings() -> None:
    """Copied to `.env` as it is, the example changes nothing but the required settings."""
    values = secrets_example_values()
    required = set(TapSpaazaUsers.config_jsonschema["required"])
    for name, schema in tap_settings().items():
        if "default" in schema:
            assert name in values, f"{name} (default {schema['default']!r}) is not set"
            text = values[name]
            value = text if "string" in schema["type"] else json.loads(text)
            assert value == schema["default"], name
        elif name not in required:
            assert name not in values, f"{name} has no default: comment it out"
    assert required <= set(values)


def test_sdk_settings_declared_in_meltano_yml_are_ones_the_tap_offers() -> None:
    declared = set(meltano_settings())
    builtin_declared = {name for name in declared if name.split(".")[0] in sdk_builtin_settings()}
    assert {"stream_maps", "flattening_enabled", "batch_config.storage.root"} <= builtin_declared
    for name in builtin_declared:
        assert offered_schema(name), name


def offered_schema(name: str) -> dict[str, Any]:
    """Return the JSON schema `--about` gives a setting, a dotted name walking into objects."""
    schema: dict[str, Any] = {"properties": TapSpaazaUsers._get_about_info().settings["properties"]}
    for part in name.split("."):
        schema = schema["properties"][part]
    return schema


@pytest.mark.parametrize("name", sorted(meltano_settings()))
def test_each_meltano_setting_is_labelled_described_and_typed(name: str) -> None:
    setting = meltano_settings()[name]
    schema = offered_schema(name)
    assert setting.get("label"), name
    assert setting.get("description"), name
    assert setting.get("kind") == expected_kind(schema), name
    assert setting["kind"] != "password", "kind: password is deprecated; use sensitive: true"


def test_secret_settings_and_only_those_are_sensitive_in_meltano() -> None:
    secret_in_tap = {name for name, schema in tap_settings().items() if schema.get("secret")}
    sensitive = {name for name, setting in meltano_settings().items() if setting.get("sensitive")}
    assert "access_token_secret" in secret_in_tap
    assert sensitive == secret_in_tap


def test_settings_group_validation_names_the_tap_required_settings() -> None:
    groups = meltano_extractor()["settings_group_validation"]
    required = set(TapSpaazaUsers.config_jsonschema.get("required", []))
    assert [set(group) for group in groups] == [required]


def test_meltano_capabilities_are_what_about_reports() -> None:
    executable = Path(sys.executable).parent / "tap-spaaza-users"
    result = subprocess.run(
        [str(executable), "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    about = json.loads(result.stdout)
    assert sorted(meltano_extractor()["capabilities"]) == sorted(about["capabilities"])


def test_meltano_yml_follows_meltano_4_conventions() -> None:
    text = (PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8")
    project = yaml.safe_load(text)
    assert "version" not in project
    assert project["requires_meltano"].startswith(">=4")
    assert project["default_environment"] in {env["name"] for env in project["environments"]}
    assert "kind: password" not in text
    extractor = meltano_extractor()
    assert extractor["namespace"] == "tap_spaaza_users"
    assert extractor["pip_url"].startswith("-e .")


def test_loaders_are_declared_in_full_with_a_safe_duckdb() -> None:
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    loaders = {plugin["name"]: plugin for plugin in project["plugins"]["loaders"]}
    assert set(loaders) == {"target-jsonl", "target-duckdb", "target-postgres"}
    for loader in loaders.values():
        assert loader["namespace"], loader["name"]
        assert loader["executable"], loader["name"]
        assert "==" in loader["pip_url"], loader["name"]
        assert loader["settings"], loader["name"]
    duckdb_pins = re.findall(r"(?:^|\s)duckdb==(\S+)", loaders["target-duckdb"]["pip_url"])
    assert duckdb_pins, "target-duckdb needs duckdb pinned below 2 in its pip_url"
    assert duckdb_pins[0].startswith("1.2.")


def number_settings() -> dict[str, dict[str, Any]]:
    """Return the tap's number settings (integer or number), by name."""
    return {
        name: schema
        for name, schema in tap_settings().items()
        if {"integer", "number"} & set(schema["type"])
    }


def test_every_number_setting_has_bounds_stated_alike_everywhere() -> None:
    """Schema bounds, the description (meltano.yml, README, Hub) and .secrets.example agree."""
    text = (PROJECT_ROOT / ".secrets.example").read_text(encoding="utf-8")
    stated = dict(re.findall(r"^#   ([a-z_]+): from (\S+ to \S+)", text, flags=re.MULTILINE))
    assert len(number_settings()) >= 12
    for name, schema in number_settings().items():
        low, high = schema["minimum"], schema["maximum"]
        assert low < high, name
        bounds = f"{low:g} to {high:g}" if high < 1e6 else f"{low} to {high}"
        assert schema["description"].endswith(f" From {bounds}."), name
        assert meltano_settings()[name]["description"] == schema["description"], name
        assert stated.get(name) == bounds, name
    assert set(stated) == set(number_settings())
