"""Settings through the real `meltano`: defaults shown, numbers from the environment arrive.

Every number setting, fractions included, can be set from the environment and reaches the tap
as the number it was given.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from tap_spaaza_users.sandbox import Sandbox

    from .conftest import Meltano

#: A whole number and a fraction no setting has as its default, and valid for every setting.
WHOLE, FRACTION = 7, "2.5"


def about_settings() -> dict[str, dict[str, Any]]:
    """Return every setting `--about` offers (the tap's and the SDK's), by name."""
    return cast(
        "dict[str, dict[str, Any]]", TapSpaazaUsers._get_about_info().settings["properties"]
    )


def types_of(schema: dict[str, Any]) -> set[str]:
    """Return the JSON types a setting's schema allows."""
    kinds = schema.get("type", [])
    return {kinds} if isinstance(kinds, str) else set(kinds)


def number_settings_from_env() -> dict[str, str]:
    """Return a `TAP_SPAAZA_USERS_*` value for every integer and number setting but chain_id."""
    values = {}
    for name, schema in about_settings().items():
        if name == "chain_id":
            continue  # the sandbox's chain, set by use_sandbox
        if "integer" in types_of(schema):
            values[name] = str(WHOLE)
        elif "number" in types_of(schema):
            values[name] = fraction_within(schema)
    return values


def fraction_within(schema: dict[str, Any]) -> str:
    """Return FRACTION, or for a setting whose bounds exclude it a fraction three quarters in."""
    low, high = schema.get("minimum"), schema.get("maximum")
    if (low is None or low <= float(FRACTION)) and (high is None or float(FRACTION) <= high):
        return FRACTION
    assert low is not None, schema
    assert high is not None, schema
    return str(Decimal(str(low)) + (Decimal(str(high)) - Decimal(str(low))) * Decimal("0.75"))


def dumped_config(meltano: Meltano, *args: str, env: dict[str, str]) -> dict[str, Any]:
    """Return the config file Meltano writes for the tap (`meltano invoke --dump=config`)."""
    result = meltano(*args, "invoke", "--dump=config", "tap-spaaza-users", extra_env=env)
    return cast("dict[str, Any]", json.loads(result.stdout))


def test_number_settings_cover_whole_and_fractional_ones() -> None:
    values = number_settings_from_env()
    assert values["lookback_minutes"] == str(WHOLE)
    assert values["poll_interval_seconds"] == FRACTION
    assert values["task_timeout_minutes"] == FRACTION
    assert "flattening_max_depth" in values


def test_config_list_shows_the_tap_defaults(meltano: Meltano) -> None:
    result = meltano("--environment=prod", "config", "list", "tap-spaaza-users", "--all")
    line = r"^(\w+) \[env: \w+\] current value: (.+) \(default\)$"
    shown = dict(re.findall(line, result.stdout, flags=re.MULTILINE))
    defaults = {name: s["default"] for name, s in about_settings().items() if "default" in s}
    assert defaults["lookback_minutes"] == 60
    for name, default in defaults.items():
        assert shown.get(name) == repr(default), f"{name}: meltano shows {shown.get(name)}"


def test_meltano_hands_the_tap_its_defaults(meltano: Meltano) -> None:
    config = dumped_config(meltano, "--environment=prod", env={})
    defaults = {name: s["default"] for name, s in about_settings().items() if "default" in s}
    assert {name: config.get(name) for name in defaults} == defaults


def test_every_number_setting_can_be_set_from_the_environment(
    meltano: Meltano, sandbox: Sandbox
) -> None:
    values = number_settings_from_env()
    env = {f"TAP_SPAAZA_USERS_{name.upper()}": text for name, text in values.items()}
    meltano.use_sandbox(sandbox)

    config = dumped_config(meltano, env=env)
    tap = TapSpaazaUsers(config=config, validate_config=True, setup_mapper=False)
    for name, text in values.items():
        expected = WHOLE if text == str(WHOLE) else Decimal(text)
        assert tap.config[name] == expected, f"{name}: the tap read {tap.config[name]!r}"

    # And the real tap, started by Meltano with all of them, accepts them.
    checked = meltano("invoke", "tap-spaaza-users", "--test", extra_env=env)
    assert "Connection test passed" in checked.stdout + checked.stderr
