"""The settings' schema: each setting's type, bounds, default and description, for the SDK."""

from __future__ import annotations

from typing import Any

from singer_sdk import typing as th

from tap_spaaza_users.api.client import DEFAULT_API_URL

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
    return _p(
        name, typed, title, f"{description} From {bound_text(low)} to {bound_text(high)}.", **kwargs
    )


def bound_text(number: float) -> str:
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
