"""The checks of the settings' values the JSON schema cannot judge well: one line, with the fix."""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import math
import os
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tap_spaaza_users import segments
from tap_spaaza_users.api.address import check_api_url
from tap_spaaza_users.api.client import DEFAULT_API_URL
from tap_spaaza_users.contract import CLOCK_SKEW, parse_utc
from tap_spaaza_users.download.storage import is_loopback
from tap_spaaza_users.errors import invalid_setting
from tap_spaaza_users.settings.required import check_required
from tap_spaaza_users.settings.schema import CONFIG_SCHEMA, bound_text

if TYPE_CHECKING:
    from collections.abc import Mapping


#: Settings that must be positive numbers.
POSITIVE_NUMBERS = (
    "max_tasks_in_flight",
    "poll_interval_seconds",
    "poll_max_interval_seconds",
    "task_timeout_minutes",
    "request_timeout_seconds",
    "retry_max_wait_seconds",
)
#: The poll intervals' floor against Spaaza (a loopback sandbox may poll faster, for tests).
POLL_FLOOR_SECONDS = 1
#: Settings whose floor is ``POLL_FLOOR_SECONDS`` unless ``api_url`` is a loopback host.
POLL_SETTINGS = ("poll_interval_seconds", "poll_max_interval_seconds")


def unknown_settings(
    config: Mapping[str, Any], schema: Mapping[str, Any]
) -> list[tuple[str, str | None]]:
    """The settings the schema does not know, each with the closest known name (or None).

    Args:
        config: The settings given.
        schema: The settings' JSON schema.

    Returns:
        (unknown name, closest known name) pairs, in the order given.
    """
    known = list(schema.get("properties", {}))
    return [
        (name, next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.6)), None))
        for name in config
        if name not in known
    ]


def numbers_from_text(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Read number settings given as text (environment variables, ``.env``) as numbers.

    The SDK parses integers, booleans and arrays from the environment but leaves numbers as
    text; a file's numbers arrive as Decimal. Both become the float they write, the type of
    the schema's bounds, so a documented edge (0.01) is compared with itself. Text that is
    not a number is left alone for ``check_settings`` to name.

    Args:
        config: The settings.
        schema: The settings' JSON schema.

    Returns:
        The settings to replace.
    """
    converted: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        value = config.get(name)
        kinds = prop.get("type", [])
        if "number" not in (kinds if isinstance(kinds, list) else [kinds]):
            continue
        if isinstance(value, str):
            with contextlib.suppress(ArithmeticError):
                number = Decimal(value.strip())
                if number.is_finite():
                    converted[name] = float(number)
        elif isinstance(value, Decimal) and value.is_finite():
            # The schema's bounds are floats: 0.01 as a Decimal is below the float 0.01.
            converted[name] = float(value)
    return converted


def check_settings(config: Any, now: dt.datetime | None = None) -> None:  # noqa: ANN401
    """Check the settings the JSON schema cannot judge well, naming the setting and the fix.

    Runs before the SDK fills in the schema's defaults: a setting left out is not checked.

    Args:
        config: The tap's settings.
        now: The current time (for ``start_date``); the clock's when left out.

    Raises:
        SpaazaConfigError: On the first invalid setting.
    """
    loopback = is_loopback(_hostname(str(config.get("api_url") or DEFAULT_API_URL)))
    check_required(config, loopback=loopback)
    chain_id = config.get("chain_id")
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        invalid_setting("chain_id", f"must be a positive integer, not {chain_id!r}")
    if config.get("api_url"):
        check_api_url(config["api_url"])
    if config.get("start_date") is not None:
        start = parse_start_date(config["start_date"])
        if start > (now or dt.datetime.now(dt.timezone.utc)) + CLOCK_SKEW:
            invalid_setting(
                "start_date",
                f"is in the future ({start.isoformat()}): no user can be created after it "
                "yet; set a moment in the past, or leave start_date out to export all users",
            )
    segments.check_segment_settings(config)
    _check_numbers(config, loopback=loopback)
    if config.get("on_invalid_row") not in (None, "fail", "skip"):
        invalid_setting("on_invalid_row", "must be 'fail' or 'skip'")


def _hostname(url: str) -> str:
    """A URL's host name; empty for one that cannot be read (``check_api_url`` names it)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def meltano_environment_hint() -> str:
    """Name the Meltano environment a run uses, which may have set a value the user never typed.

    Meltano tells a plugin its environment (``MELTANO_ENVIRONMENT``), not where each value came
    from, so the hint says where to look and how to choose another environment.
    """
    environment = os.environ.get("MELTANO_ENVIRONMENT")
    if not environment:
        return ""
    return (
        f"; Meltano's environment '{environment}' is in use: if its config in meltano.yml sets "
        f"this value, change it there, or choose another environment with "
        f"`meltano --environment=NAME ...`"
    )


def _check_numbers(config: Any, *, loopback: bool) -> None:  # noqa: ANN401
    """Check the number settings' types, signs and bounds (config files give Decimal fractions)."""
    for name, prop in CONFIG_SCHEMA["properties"].items():
        value = config.get(name)
        if value is None:
            continue
        kinds = prop.get("type", [])
        if "minimum" not in prop:  # not a number setting of ours (the SDK's are its own)
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, Decimal))
            or not math.isfinite(value)
        ):
            invalid_setting(name, f"must be a number, not {value!r}")
        value = Decimal(str(value))  # a float bound against a Decimal setting: compare exactly
        if value < 0 or (value == 0 and name in POSITIVE_NUMBERS):
            invalid_setting(
                name, f"must be {'above' if name in POSITIVE_NUMBERS else 'at least'} 0"
            )
        if name in POLL_SETTINGS and not loopback and value < POLL_FLOOR_SECONDS:
            invalid_setting(
                name,
                f"must be at least {POLL_FLOOR_SECONDS} second to spare the Spaaza API, not "
                f"{value} (only a loopback api_url, such as a local sandbox, may poll faster)"
                + meltano_environment_hint(),
            )
        low, high = prop["minimum"], prop["maximum"]
        if not Decimal(str(low)) <= value <= Decimal(str(high)):
            given = bound_text(float(value))
            invalid_setting(
                name, f"must be from {bound_text(low)} to {bound_text(high)}, not {given}"
            )
        if "number" not in kinds and value != int(value):
            invalid_setting(name, f"must be a whole number, not {value}")


def parse_start_date(value: Any) -> dt.datetime:  # noqa: ANN401
    """Read ``start_date`` as an aware UTC datetime (a naive value is taken as UTC).

    Args:
        value: The setting.

    Returns:
        The moment.

    Raises:
        SpaazaConfigError: When it is not an ISO 8601 date-time.
    """
    try:
        return parse_utc(str(value))
    except ValueError:
        invalid_setting(
            "start_date", f"must be an ISO 8601 date-time like 2024-01-31T00:00:00Z: {value!r}"
        )
