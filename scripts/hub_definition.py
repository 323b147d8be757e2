"""Write the MeltanoHub plugin definition from `tap-spaaza-users --about --format=json`.

Run ``python scripts/hub_definition.py`` after changing a setting; ``--check`` exits 1 when the
file in the repository is stale. Settings (names, labels, descriptions, defaults, secrets,
options) come from ``--about``; kinds follow meltano.yml's rule (fractional numbers are
``string``: Meltano 4.4 passes neither an ``integer`` nor a ``decimal`` fraction from the
environment); the ``test`` command and option labels come from meltano.yml.
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
    types = schema.get("type", "string")
    types = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    if "enum" in schema:
        return "options"
    if types[0] == "string" and schema.get("format") in {"date-time", "date"}:
        return "date_iso8601"
    return KIND_BY_TYPE.get(types[0], "string")


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
    return {
        "name": NAME,
        "variant": VARIANT,
        "namespace": plugin["namespace"],
        "label": METADATA["label"],
        "description": info["description"],
        "pip_url": NAME,
        "executable": plugin["executable"],
        "domain_url": METADATA["domain_url"],
        "keywords": METADATA["keywords"],
        "maintenance_status": METADATA["maintenance_status"],
        "quality": METADATA["quality"],
        "supported_python_versions": info["supported_python_versions"],
        "capabilities": info["capabilities"],
        "commands": plugin["commands"],
        "settings_group_validation": [info["settings"]["required"]],
        "settings": [setting(n, s, option_labels.get(n, {})) for n, s in properties.items()],
    }


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
