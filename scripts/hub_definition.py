"""Write the MeltanoHub plugin definition from `tap-spaaza-users --about --format=json`.

Run ``python scripts/hub_definition.py`` after changing a setting; ``--check`` exits 1 when the
file in the repository is stale. Settings (names, labels, descriptions, defaults, secrets,
options) come from ``--about``; kinds follow meltano.yml's rule (fractional numbers are
``string``: Meltano 4.4 passes neither an ``integer`` nor a ``decimal`` fraction from the
environment); the ``test`` command and option labels come from meltano.yml. The file is laid
out as the Hub's own files are: keys in alphabetical order at every level, settings sorted by
name, ``batch_config`` declared as its dotted settings (as the Hub's SDK taps do).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import yaml

ROOT = Path(__file__).resolve().parent.parent
NAME = "tap-spaaza-users"
#: The maintainers' namespace on MeltanoHub; also the definition's file name.
VARIANT = "contributors"
DEFINITION = ROOT / "hub" / "extractors" / NAME / f"{VARIANT}.yml"
HEADER = (
    "# MeltanoHub definition of tap-spaaza-users, written by scripts/hub_definition.py from\n"
    "# `tap-spaaza-users --about --format=json` and meltano.yml: do not edit by hand.\n"
)
#: Where the Hub's page shows the plugin's logo: a file of the Hub's, shipped here to go with a
#: submission (hub/static/assets/logos/extractors/spaaza.svg).
LOGO_URL = "/assets/logos/extractors/spaaza.svg"
#: The plugin's repository: the Hub's maintainers list is derived from it (its owner's URL).
#: Replace it with the published repository's URL when submitting the definition.
REPOSITORY = "https://git.example.com/tap-spaaza-users-contributors/tap-spaaza-users"
NUMBER = "number"
#: Settings the Hub declares by their dotted names (one per leaf) instead of as one object.
DOTTED = ("batch_config",)
#: Fixed facts about the plugin that `--about` does not hold.
METADATA: dict[str, Any] = {
    "label": "Spaaza",
    "domain_url": "https://www.spaaza.com",
    "keywords": ["api", "meltano_sdk", "spaaza", "loyalty", "retail", "crm"],
    "maintenance_status": "beta",
    "quality": "unknown",
}
KIND_BY_TYPE = {
    "integer": "integer",
    "number": "string",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}


def about() -> dict[str, Any]:
    """Return what `tap-spaaza-users --about --format=json` prints."""
    result = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return cast("dict[str, Any]", json.loads(result.stdout))


def meltano_extractor() -> dict[str, Any]:
    """Return the tap's plugin block in meltano.yml."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (plugin,) = [p for p in project["plugins"]["extractors"] if p["name"] == NAME]
    return cast("dict[str, Any]", plugin)


def setting_kind(schema: dict[str, Any]) -> str:
    """Return the Meltano kind for a setting's JSON schema.

    Args:
        schema: The setting's JSON schema.

    Returns:
        The kind.
    """
    first = setting_kind_of(schema)
    if "enum" in schema:
        return "options"
    if first == "string" and schema.get("format") in {"date-time", "date"}:
        return "date_iso8601"
    return KIND_BY_TYPE.get(first, "string")


def leaf_settings(properties: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the settings by name, the ``DOTTED`` objects split into their dotted leaves."""
    leaves: dict[str, dict[str, Any]] = {}

    def walk(prefix: str, schema: dict[str, Any]) -> None:
        if "properties" not in schema:
            leaves[prefix] = schema
            return
        for name, child in schema["properties"].items():
            walk(f"{prefix}.{name}", child)

    for name, schema in properties.items():
        if name in DOTTED:
            walk(name, schema)
        else:
            leaves[name] = schema
    return leaves


def fractional_settings(properties: dict[str, Any]) -> list[str]:
    """Return the settings whose JSON type is ``number``: Meltano must see them as strings."""
    return sorted(name for name, schema in properties.items() if setting_kind_of(schema) == NUMBER)


def setting_kind_of(schema: dict[str, Any]) -> str:
    """Return a setting's first non-null JSON type."""
    types = schema.get("type", "string")
    types = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    return str(types[0])


def settings_preamble(fractional: list[str]) -> str:
    """Return the Hub page's note on the number settings declared as ``kind: string``."""
    names = ", ".join(f"`{name}`" for name in fractional)
    return (
        f"The settings that take fractions of a unit ({names}) are `kind: string` on purpose, "
        "not `integer`: Meltano 4.4 rejects a value such as `0.5` from an environment variable "
        "for an `integer` setting and cannot pass on a `decimal` one, while a string reaches the "
        "tap unchanged and the tap reads it as a number. A definition refreshed from `--about` "
        "(which maps a JSON `number` to `integer`) must keep them `string`."
    )


def sorted_keys(value: Any) -> Any:  # noqa: ANN401
    """Return ``value`` with every mapping's keys in alphabetical order (yamllint key-ordering)."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


def setting(name: str, schema: dict[str, Any], option_labels: dict[str, str]) -> dict[str, Any]:
    """Return the Hub's definition of one setting."""
    entry: dict[str, Any] = {
        "name": name,
        "label": schema.get("title", name),
        "kind": setting_kind(schema),
        "description": schema.get("description", ""),
    }
    if "default" in schema:
        entry["value"] = schema["default"]
    if "enum" in schema:
        entry["options"] = [
            {"label": option_labels.get(value, str(value).title()), "value": value}
            for value in schema["enum"]
        ]
    if schema.get("secret"):
        entry["sensitive"] = True
    return entry


def definition() -> dict[str, Any]:
    """Return the plugin definition."""
    info = about()
    plugin = meltano_extractor()
    option_labels = {
        declared["name"]: {option["value"]: option["label"] for option in declared["options"]}
        for declared in plugin["settings"]
        if "options" in declared
    }
    properties = info["settings"]["properties"]
    settings = [
        setting(name, schema, option_labels.get(name, {}))
        for name, schema in sorted(leaf_settings(properties).items())
    ]
    ordered: dict[str, Any] = sorted_keys(
        {
            "name": NAME,
            "variant": VARIANT,
            "namespace": plugin["namespace"],
            "label": METADATA["label"],
            "description": info["description"],
            "pip_url": NAME,
            "executable": plugin["executable"],
            "domain_url": METADATA["domain_url"],
            "logo_url": LOGO_URL,
            "repo": REPOSITORY,
            "keywords": METADATA["keywords"],
            "maintenance_status": METADATA["maintenance_status"],
            "quality": METADATA["quality"],
            "supported_python_versions": info["supported_python_versions"],
            "capabilities": sorted(info["capabilities"]),
            "commands": plugin["commands"],
            "settings_group_validation": [sorted(info["settings"]["required"])],
            "settings_preamble": settings_preamble(fractional_settings(properties)),
            "settings": settings,
        }
    )
    return ordered


def render() -> str:
    """Return the definition file's text."""
    body = yaml.safe_dump(definition(), sort_keys=False, allow_unicode=True, width=100)
    return cast("str", HEADER + body)


def main() -> int:
    """Write the definition, or with ``--check`` say whether it is up to date."""
    text = render()
    if "--check" in sys.argv[1:]:
        if DEFINITION.read_text(encoding="utf-8") != text:
            print(f"{DEFINITION.relative_to(ROOT)} is stale: run python scripts/hub_definition.py")
            return 1
        return 0
    DEFINITION.parent.mkdir(parents=True, exist_ok=True)
    DEFINITION.write_text(text, encoding="utf-8")
    print(f"wrote {DEFINITION.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
