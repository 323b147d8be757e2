"""The MeltanoHub definition: current, valid for the Hub, in step with --about and meltano.yml.

The Hub validates an extractor's definition with its JSON schema for plugin definitions; the rules
below are that schema's (required keys, closed key sets, enums), checked here without a copy of it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from hub_definition import DEFINITION, render  # noqa: E402

REQUIRED_KEYS = {"name", "namespace", "variant", "label", "quality"}
ALLOWED_KEYS = REQUIRED_KEYS | {
    "pip_url", "description", "executable", "settings", "docs", "repo", "logo_url", "hidden",
    "python", "settings_group_validation", "commands", "capabilities", "metadata", "schema",
    "select", "maintenance_status", "domain_url", "keywords", "requires", "definition",
    "next_steps", "settings_preamble", "usage", "prereq", "supported_python_versions",
    "log_parser",
}  # fmt: skip
STRING_KEYS = {
    "name", "namespace", "variant", "label", "description", "pip_url", "executable", "docs",
    "repo", "python", "definition", "next_steps", "settings_preamble", "usage", "prereq",
    "log_parser",
}  # fmt: skip
CAPABILITIES = {
    "properties", "catalog", "discover", "state", "about", "stream-maps", "schema-flattening",
    "activate-version", "batch", "test", "log-based", "structured-logging",
}  # fmt: skip
MAINTENANCE_STATUSES = {"active", "beta", "development", "inactive", "unknown"}
QUALITIES = {"gold", "silver", "bronze", "unknown"}
SETTING_KEYS = {
    "name", "aliases", "label", "value", "placeholder", "kind", "description", "tooltip",
    "documentation", "env", "value_processor", "value_post_processor", "oauth", "options",
    "docs", "hidden", "sensitive",
}  # fmt: skip
SETTING_KINDS = {
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "decimal",
    "options", "object", "array", "boolean", "string",
}  # fmt: skip


def hub() -> dict[str, Any]:
    """Return the plugin definition kept in the repository."""
    return cast("dict[str, Any]", yaml.safe_load(DEFINITION.read_text(encoding="utf-8")))


def hub_settings() -> dict[str, dict[str, Any]]:
    """Return the definition's settings, by name."""
    return {entry["name"]: entry for entry in hub()["settings"]}


def about() -> dict[str, Any]:
    """Return what the installed `tap-spaaza-users --about --format=json` prints."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tap-spaaza-users"), "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return cast("dict[str, Any]", json.loads(result.stdout))


def meltano_extractor() -> dict[str, Any]:
    """Return the tap's plugin block in meltano.yml."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (plugin,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-spaaza-users"]
    return cast("dict[str, Any]", plugin)


def test_definition_is_up_to_date() -> None:
    assert DEFINITION.read_text(encoding="utf-8") == render(), (
        "the Hub definition is stale: run `python scripts/hub_definition.py`"
    )


def test_definition_has_the_hub_schema_keys_and_values() -> None:
    definition = hub()
    assert set(definition) >= REQUIRED_KEYS, REQUIRED_KEYS - set(definition)
    assert set(definition) <= ALLOWED_KEYS, set(definition) - ALLOWED_KEYS
    for key in STRING_KEYS & set(definition):
        assert isinstance(definition[key], str), key
    assert set(definition["capabilities"]) <= CAPABILITIES
    assert definition["maintenance_status"] in MAINTENANCE_STATUSES
    assert definition["quality"] in QUALITIES
    assert all(isinstance(word, str) for word in definition["keywords"])
    assert definition["keywords"]
    domain = urlsplit(definition["domain_url"])
    assert domain.scheme == "https"
    assert domain.netloc
    assert isinstance(definition["commands"], dict)
    for version in definition["supported_python_versions"]:
        assert re.fullmatch(r"3\.\d+", version), version


def test_definition_settings_have_the_hub_schema_keys_and_kinds() -> None:
    settings = hub()["settings"]
    names = [entry["name"] for entry in settings]
    assert len(names) == len(set(names)), "a setting is defined twice"
    for entry in settings:
        assert isinstance(entry["name"], str)
        assert set(entry) <= SETTING_KEYS, (entry["name"], set(entry) - SETTING_KEYS)
        assert entry["kind"] in SETTING_KINDS, entry["name"]
        assert entry["kind"] != "password", "kind: password is deprecated; use sensitive: true"
        assert isinstance(entry["label"], str)
        assert entry["label"]
        assert isinstance(entry["description"], str)
        assert entry["description"]
        for option in entry.get("options", []):
            assert isinstance(option["label"], str)
            assert isinstance(option["value"], str)
    for group in hub()["settings_group_validation"]:
        assert all(isinstance(name, str) for name in group)
        assert set(group) <= set(names)


def test_definition_settings_are_what_about_reports() -> None:
    info = about()
    properties = info["settings"]["properties"]
    settings = hub_settings()
    assert list(settings) == list(properties)
    for name, schema in properties.items():
        entry = settings[name]
        assert entry["label"] == schema["title"], name
        assert entry["description"] == schema["description"], name
        assert entry.get("value") == schema.get("default"), name
        assert ("value" in entry) == ("default" in schema), name
        assert bool(entry.get("sensitive")) == bool(schema.get("secret")), name
        if "enum" in schema:
            assert [option["value"] for option in entry["options"]] == schema["enum"], name
    definition = hub()
    assert definition["capabilities"] == info["capabilities"]
    assert definition["description"] == info["description"]
    assert definition["supported_python_versions"] == info["supported_python_versions"]
    assert [set(group) for group in definition["settings_group_validation"]] == [
        set(info["settings"]["required"])
    ]


@pytest.mark.parametrize("field", ["kind", "value", "sensitive", "options"])
def test_definition_settings_match_meltano_yml(field: str) -> None:
    declared = {entry["name"]: entry for entry in meltano_extractor()["settings"]}
    settings = hub_settings()
    assert set(settings) == set(declared)
    for name, entry in settings.items():
        assert entry.get(field) == declared[name].get(field), f"{name}.{field}"


def test_definition_matches_meltano_yml_plugin() -> None:
    plugin, definition = meltano_extractor(), hub()
    for key in ("name", "namespace", "executable", "commands", "settings_group_validation"):
        assert definition[key] == plugin[key], key
    assert sorted(definition["capabilities"]) == sorted(plugin["capabilities"])
