"""The tap's settings: their schema (types, bounds, defaults) and the checks of their values."""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import math
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from singer_sdk import typing as th

from tap_spaaza_users import segments
from tap_spaaza_users.api.address import check_api_url
from tap_spaaza_users.api.client import DEFAULT_API_URL
from tap_spaaza_users.contract import CLOCK_SKEW, parse_utc
from tap_spaaza_users.download.storage import is_loopback
from tap_spaaza_users.errors import invalid_setting
from tap_spaaza_users.token_settings import check_required

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
#: The largest id Spaaza gives a chain or a segment (a signed 32-bit integer).
MAX_ID = 2_147_483_647
#: Twenty years in days: longer than any chain's history, so no window or lookback needs more.
MAX_HISTORY_DAYS = 7_305


def _p(name: str, kind: Any, title: str, description: str, **kwargs: Any) -> th.Property[Any]:  # noqa: ANN401
    """Declare one setting (a shorthand keeping the list below readable)."""
    return th.Property(name, kind, title=title, description=description, **kwargs)


def _n(
    name: str,
    kind: type[th.IntegerType | th.NumberType],
    title: str,
    description: str,
    bounds: tuple[float, float],
    **kwargs: Any,  # noqa: ANN401
) -> th.Property[Any]:
    """Declare a number setting with its bounds, stated at the end of its description too."""
    low, high = bounds
    typed = kind(minimum=low, maximum=high)  # type: ignore[arg-type]
    return _p(name, typed, title, f"{description} From {_text(low)} to {_text(high)}.", **kwargs)


def _text(number: float) -> str:
    """A bound as people write it: 60, 0.01, 2147483647."""
    return str(int(number)) if float(number).is_integer() else str(number)


CONFIG_SCHEMA = th.PropertiesList(
    _p("api_url", th.URIType, "API URL",
       "Base URL of the Spaaza Services API (production by default; staging is "
       "https://services-test01.spaaza.com). Must be https, except for a local sandbox.",
       default=DEFAULT_API_URL),
    _n("chain_id", th.IntegerType, "Chain ID",
       "The Spaaza chain whose users are exported; the access token must be scoped to it.",
       (1, MAX_ID), required=True),
    _p("access_token_id", th.StringType, "Access token ID",
       "ID (a UUID) of a Spaaza AccessToken for the chain.", required=True, secret=True),
    _p("access_token_secret", th.StringType, "Access token secret",
       "Secret of that AccessToken. Sent only to api_url's host, never logged.",
       required=True, secret=True),
    _p("start_date", th.DateTimeType, "Start date",
       "Only users created at or after this moment are synced. Without it (and without "
       "state) the first sync exports all users."),
    _n("lookback_minutes", th.IntegerType, "Lookback (minutes)",
       "Incremental syncs ask for users created since the bookmark minus this many minutes, "
       "because Spaaza's export index lags behind; duplicates are resolved by id.",
       (0, MAX_HISTORY_DAYS * 24 * 60), default=60),
    _n("backfill_window_days", th.IntegerType, "Backfill window (days)",
       "Split a long history (a start_date or bookmark far in the past) into export tasks "
       "of this many days each, the bookmark advancing after each one, so an interrupted "
       "backfill resumes where it stopped. Unset or 0 means one export task per sync.",
       (0, MAX_HISTORY_DAYS)),
    _n("max_tasks_in_flight", th.IntegerType, "Max tasks in flight",
       "With backfill_window_days, how many export tasks may run in Spaaza at once: the next "
       "windows are exported while the current one is downloaded and emitted. 1 exports one "
       "window at a time; the default 2 keeps Spaaza's load to one extra task.",
       (1, 10), default=2),
    _n("full_refresh_days", th.IntegerType, "Full refresh every (days)",
       "Export every user again (not only new ones) when the last full export is this many "
       "days old, so changed users are re-sent, and send ACTIVATE_VERSION so targets that "
       "honour it remove deleted users. A first sync counts as one. Unset or 0 means off.",
       (0, 365)),
    _n("full_refresh_min_ratio", th.NumberType, "Full refresh minimum ratio",
       "A full refresh sends ACTIVATE_VERSION (which removes every user not in it) only "
       "when it holds at least this share of the users the last delivered full refresh "
       "held, and never when it is empty: a smaller one is still loaded, but deletes "
       "nothing, keeps the refresh due and ends the sync with exit status 1. Set 0 for one "
       "sync to accept a real shrink.",
       (0, 1), default=0.5),
    _p("delete_completed_tasks", th.BooleanType, "Delete completed tasks",
       "Delete each export task once its file has been loaded: the next sync deletes the "
       "tasks its state names as delivered (a rerun after a failed load reuses them instead). "
       "Also delete any task abandoned after a timeout or left by an interrupted run, so "
       "tasks do not pile up in Console.",
       default=True),
    _n("task_reuse_hours", th.IntegerType, "Task reuse (hours)",
       "A run that finds, in Spaaza's task list, an export task an interrupted run left for "
       "the same window and segment uses it instead of exporting again: while it runs, or "
       "for this many hours once DONE (while its file is surely still kept). Older finished "
       "tasks of the tap are deleted by the clean-up (delete_completed_tasks).",
       (0, 168), default=24),
    _n("segment_id", th.IntegerType, "Saved segment ID",
       "Export only this segment saved in Spaaza Console (the number in its Console URL). "
       "The whole segment is exported each sync and the created_date bookmark is applied "
       "by the tap. Not together with segment_rules.", (1, MAX_ID)),
    _p("segment_rules", th.ArrayType(th.ObjectType(additional_properties=True)),
       "Segment rules",
       "Spaaza segment rules (field_name, field_type, operator and the operator's operands), "
       "e.g. to export only opted-in users; checked before any export task is created.",
       default=[]),
    _p("segment_join", th.StringType, "Segment join",
       "How segment_rules combine: 'all' (every rule; the created_date window is added "
       "server-side) or 'any' (one rule is enough; the bookmark is then applied by the tap).",
       default="all", allowed_values=["all", "any"]),
    _n("poll_interval_seconds", th.NumberType, "First poll interval (seconds)",
       "Wait before the first status check of the export task; it grows with each check. "
       "At least 1 unless api_url is a loopback host (a local sandbox).",
       (0.01, 3_600), default=5),
    _n("poll_max_interval_seconds", th.NumberType, "Longest poll interval (seconds)",
       "The poll interval stops growing at this value. At least 1 unless api_url is a "
       "loopback host (a local sandbox).", (0.01, 3_600), default=60),
    _n("task_timeout_minutes", th.NumberType, "Task timeout (minutes)",
       "Give up (and delete the task) if the export is not done after this long.",
       (0.001, 1_440), default=180),
    _n("request_timeout_seconds", th.NumberType, "Request timeout (seconds)",
       "Connect and read timeout of each HTTP request (API calls and file download).",
       (0.1, 600), default=60),
    _n("max_retries", th.IntegerType, "Max retries",
       "Retries of a failed HTTP request (429, 5xx, connection errors) before giving up.",
       (0, 20), default=5),
    _n("retry_initial_wait_seconds", th.NumberType, "First retry wait (seconds)",
       "The first backoff step; it doubles with each retry (with jitter). A server's "
       "Retry-After (on a 429 or 5xx) takes precedence.", (0, 600), default=1),
    _n("retry_max_wait_seconds", th.NumberType, "Longest retry wait (seconds)",
       "Cap of every backoff wait, Retry-After included.", (0.01, 3_600), default=60),
    _p("on_invalid_row", th.StringType, "On invalid row",
       "What to do with a CSV row that cannot be typed: 'fail' stops the sync naming task, "
       "line and column; 'skip' logs it, counts it and carries on.",
       default="fail", allowed_values=["fail", "skip"]),
    _p("keep_batch_files", th.BooleanType, "Keep BATCH files",
       "With batch_config, keep the BATCH files: by default the next sync deletes the files "
       "its state proves loaded (they hold personal data). Turn on for a target that loads "
       "the files later than the state it saves.",
       default=False),
    _p("user_agent", th.StringType, "User-Agent",
       "User-Agent header of every request; defaults to tap-spaaza-users/<version>."),
    _p("metrics_log_level", th.StringType, "Metrics log level",
       "Level of the METRIC line each status poll of a running export writes: 'INFO' logs "
       "them, 'DEBUG' only when the tap logs at DEBUG, 'NONE' never. Every other METRIC "
       "(record_count, sync_duration, the duration of every other request, and of a failed "
       "poll) stays at INFO.",
       default="INFO", allowed_values=["INFO", "DEBUG", "NONE"]),
).to_dict()  # fmt: skip


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
            invalid_setting(
                name, f"must be from {_text(low)} to {_text(high)}, not {_text(float(value))}"
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


@dataclass(frozen=True)
class Settings:
    """The tap's settings, typed once from the checked config (``from_tap_config``).

    The tap builds it and every module below the tap reads these fields, never the raw
    config. Numbers keep their setting's unit; a setting that is off (unset or 0) is None.
    """

    api_url: str
    chain_id: int
    access_token_id: str = field(repr=False)
    access_token_secret: str = field(repr=False)
    user_agent: str | None
    start_date: dt.datetime | None
    lookback_minutes: float
    backfill_window_days: int | None
    max_tasks_in_flight: int
    full_refresh_days: int | None
    full_refresh_min_ratio: float
    delete_completed_tasks: bool
    task_reuse_hours: float
    segment: segments.SegmentChoice
    poll_interval_seconds: float
    poll_max_interval_seconds: float
    task_timeout_minutes: float
    request_timeout_seconds: float
    max_retries: int
    retry_initial_wait_seconds: float
    retry_max_wait_seconds: float
    on_invalid_row: str
    #: Whether the SDK's ``batch_config`` is set: records go out as BATCH files.
    batch: bool

    @classmethod
    def from_tap_config(cls, config: Mapping[str, Any]) -> Settings:
        """Type the tap's config (checked, with the schema's defaults filled in).

        Args:
            config: The tap's config.

        Returns:
            The settings.
        """
        start_date = config.get("start_date")
        segment_id = config.get("segment_id")
        return cls(
            api_url=str(config.get("api_url") or DEFAULT_API_URL),
            chain_id=int(config["chain_id"]),
            access_token_id=str(config["access_token_id"]),
            access_token_secret=str(config["access_token_secret"]),
            user_agent=config.get("user_agent") or None,
            start_date=parse_start_date(start_date) if start_date else None,
            lookback_minutes=float(config["lookback_minutes"]),
            backfill_window_days=int(config.get("backfill_window_days") or 0) or None,
            max_tasks_in_flight=int(config["max_tasks_in_flight"]),
            full_refresh_days=int(config.get("full_refresh_days") or 0) or None,
            full_refresh_min_ratio=float(config["full_refresh_min_ratio"]),
            delete_completed_tasks=bool(config["delete_completed_tasks"]),
            task_reuse_hours=float(config["task_reuse_hours"]),
            segment=segments.SegmentChoice(
                segment_id=None if segment_id is None else int(segment_id),
                rules=tuple(config.get("segment_rules") or ()),
                join=config.get("segment_join") or "all",
            ),
            poll_interval_seconds=float(config["poll_interval_seconds"]),
            poll_max_interval_seconds=float(config["poll_max_interval_seconds"]),
            task_timeout_minutes=float(config["task_timeout_minutes"]),
            request_timeout_seconds=float(config["request_timeout_seconds"]),
            max_retries=int(config["max_retries"]),
            retry_initial_wait_seconds=float(config["retry_initial_wait_seconds"]),
            retry_max_wait_seconds=float(config["retry_max_wait_seconds"]),
            on_invalid_row=str(config["on_invalid_row"]),
            batch=bool(config.get("batch_config")),
        )


class HasSettings(Protocol):
    """What holds the typed settings: the tap (its streams read them from it)."""

    @property
    def settings(self) -> Settings:
        """The tap's settings, typed once."""
        ...
