"""The tap's settings typed once: a frozen ``Settings`` the tap builds and passes down."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tap_spaaza_users import segments
from tap_spaaza_users.api.client import DEFAULT_API_URL
from tap_spaaza_users.settings.checks import parse_start_date

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping


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
