"""The users stream: window from the bookmark, one export task, typed records, then the bookmark."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_spaaza_users import segments
from tap_spaaza_users.client import ClientSettings, SpaazaClient
from tap_spaaza_users.columns import PRIMARY_KEY, REPLICATION_KEY, users_json_schema
from tap_spaaza_users.download import download_export
from tap_spaaza_users.export import PollSettings, UsersExport, build_export_task
from tap_spaaza_users.records import UsersCsvReader

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from singer_sdk.helpers.types import Context


class UsersStream(Stream):
    """Every user of the chain, incremental on ``created_date``.

    The export file comes in no particular order, so the stream is unsorted: the SDK keeps
    the greatest ``created_date`` seen as a progress marker and promotes it to the bookmark
    only when the whole file was emitted. An interrupted sync leaves the bookmark as it was.
    """

    name = "users"
    primary_keys: ClassVar[list[str]] = [PRIMARY_KEY]
    replication_key = REPLICATION_KEY
    is_sorted = False
    # records.py types every value itself; the SDK's conformance has nothing left to do.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Any) -> None:  # noqa: ANN401
        """Create the stream with its schema from the column list.

        Args:
            tap: The tap.
        """
        super().__init__(tap, schema=users_json_schema())

    def make_client(self) -> SpaazaClient:
        """Build a Services API client from the settings.

        Returns:
            The client (close it when done).
        """
        config = self.config
        return SpaazaClient(
            ClientSettings(
                api_url=config.get("api_url") or "https://services-prod.spaaza.com",
                chain_id=int(config["chain_id"]),
                token_id=config["access_token_id"],
                token_secret=config["access_token_secret"],
                user_agent=self.user_agent,
                timeout=float(config.get("request_timeout_seconds", 60)),
                max_retries=int(config.get("max_retries", 5)),
                retry_initial_wait=float(config.get("retry_initial_wait_seconds", 1)),
                retry_max_wait=float(config.get("retry_max_wait_seconds", 60)),
            ),
            self.logger,
        )

    @property
    def user_agent(self) -> str:
        """The User-Agent of every request: the setting, or the tap's name and version."""
        return self.config.get("user_agent") or f"{self._tap.name}/{self._tap.plugin_version}"

    @property
    def server_side_window(self) -> bool:
        """Whether Spaaza applies the created_date window; if not, only our filter does."""
        return segments.SegmentChoice.from_config(self.config).server_side_window

    def _announce_own_window(self, start: dt.datetime | None) -> None:
        """Say once per sync that the bookmark is applied on our side, and why."""
        self.logger.info(
            "The bookmark is applied on our side: %s is exported whole each sync, then "
            "users created before %s are left out",
            segments.SegmentChoice.from_config(self.config).describe(),
            start or "the start (no bookmark or start_date yet, so none)",
        )

    def window_start(self, context: Context | None) -> dt.datetime | None:
        """The earliest ``created_date`` this sync asks for.

        The bookmark minus ``lookback_minutes`` (the export index lags behind), never before
        ``start_date``; ``start_date`` on a first sync; None (all users) without either.

        Args:
            context: Stream partition (none for this stream).

        Returns:
            The window start, in UTC.
        """
        start_date = self._start_date()
        bookmark = self.get_starting_replication_key_value(context)
        if not bookmark:
            return start_date
        start = parse_utc(str(bookmark)) - dt.timedelta(
            minutes=float(self.config.get("lookback_minutes", 60))
        )
        return max(start, start_date) if start_date else start

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Export, download and read the users created since the window start.

        Args:
            context: Stream partition (none for this stream).

        Yields:
            Typed user records.
        """
        window_start = self.window_start(context)
        if not self.server_side_window:
            self._announce_own_window(window_start)
        with (
            tempfile.TemporaryDirectory(prefix="tap-spaaza-users-") as workdir,
            contextlib.closing(self.make_client()) as client,
        ):
            export = UsersExport(client, self._poll_settings(), self.logger)
            task_id = export.submit(self._task_body(window_start))
            export.wait(task_id)
            result = download_export(
                lambda: export.download_url(task_id),
                Path(workdir) / f"User_Export-{task_id}.csv",
                timeout=float(self.config.get("request_timeout_seconds", 60)),
                user_agent=self.user_agent,
                logger=self.logger,
                max_retries=int(self.config.get("max_retries", 5)),
                backoff_base=float(self.config.get("retry_initial_wait_seconds", 1)),
                backoff_cap=float(self.config.get("retry_max_wait_seconds", 60)),
            )
            yield from self._read(result.path, task_id, window_start)

    def _read(
        self, path: Path, task_id: int, window_start: dt.datetime | None
    ) -> Iterator[dict[str, Any]]:
        """Yield the file's records in the window, then log the tally and the new bookmark."""
        started = time.monotonic()
        emitted = outside = 0
        latest: str | None = None
        with UsersCsvReader(
            path,
            task_id=task_id,
            on_invalid_row=self.config.get("on_invalid_row", "fail"),
            logger=self.logger,
        ) as reader:
            self._adopt_columns(reader.extra_columns)
            for record in reader:
                created = record.get(REPLICATION_KEY)
                if window_start and created and parse_utc(created) < window_start:
                    outside += 1
                    continue
                emitted += 1
                latest = created if created and (latest is None or created > latest) else latest
                yield record
            skipped = reader.skipped_rows
        seconds = max(time.monotonic() - started, 1e-6)
        self.logger.info(
            "Emitted %d users from task %d in %.1fs (%.0f rows/s); %d before the window "
            "start left out, %d invalid rows skipped",
            emitted,
            task_id,
            seconds,
            emitted / seconds,
            outside,
            skipped,
        )
        if latest:
            self.logger.info("Bookmark %s advances to %s", REPLICATION_KEY, latest)
        else:
            self.logger.info("No users in the window; the bookmark stays where it was")

    def _adopt_columns(self, extra_columns: list[str]) -> None:
        """Add the file's unknown columns (strings) to the schema and re-send SCHEMA."""
        if not extra_columns:
            return
        fragment = users_json_schema(extra_columns)["properties"]
        added = {name: fragment[name] for name in extra_columns}
        schemas = [self.schema, self._input_schema] + [
            stream_map.transformed_schema
            for stream_map in self.stream_maps
            if isinstance(stream_map, SameRecordTransform)
        ]
        for schema in schemas:
            if schema is not None:
                for name, prop in added.items():
                    schema.setdefault("properties", {}).setdefault(name, dict(prop))
        self.logger.info("Schema extended with the file's extra columns: %s", extra_columns)
        if self.selected:
            self._write_schema_message()

    def _task_body(self, window_start: dt.datetime | None) -> dict[str, Any]:
        """The export task body for this sync."""
        return build_export_task(
            chain_id=int(self.config["chain_id"]),
            window_start=window_start,
            segment=segments.SegmentChoice.from_config(self.config),
            now=dt.datetime.now(dt.timezone.utc),
            origin=f"{self._tap.name} {self._tap.plugin_version}",
        )

    def _poll_settings(self) -> PollSettings:
        """Poll interval, cap and timeout from the settings."""
        return PollSettings(
            interval=float(self.config.get("poll_interval_seconds", 5)),
            max_interval=float(self.config.get("poll_max_interval_seconds", 60)),
            timeout=float(self.config.get("task_timeout_minutes", 180)) * 60,
        )

    def _start_date(self) -> dt.datetime | None:
        """The ``start_date`` setting as an aware UTC datetime, if set."""
        value = self.config.get("start_date")
        return parse_utc(str(value)) if value else None


def parse_utc(text: str) -> dt.datetime:
    """Read an ISO 8601 / RFC 3339 date-time as an aware UTC datetime (naive means UTC).

    Args:
        text: The date-time.

    Returns:
        The moment in UTC.

    Raises:
        ValueError: When the text is not a date-time.
    """
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)
