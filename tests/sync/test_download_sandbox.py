"""The export file against the sandbox's storage: refresh, resume, gzip, every CSV dialect."""

from __future__ import annotations

import logging
import re
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import requests
from support.spooled import Fetched, fetch_to

from tap_spaaza_users.contract import USER_COLUMNS, ColumnType
from tap_spaaza_users.errors import SpaazaDownloadError, SpaazaInvalidRowError
from tap_spaaza_users.records.reader import UsersCsvReader

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

LOGGER = logging.getLogger("test_download_sandbox")
USER_AGENT = "tap-spaaza-users/test"


class Export:
    """One export task made with plain HTTP calls (not the tap's client), and its signed URLs."""

    def __init__(self, sb: Sandbox) -> None:
        """Create the task and wait until it is DONE."""
        self.sb = sb
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {sb.token_id}:{sb.token_secret}"
        body = {
            "chain": sb.chain_id,
            "desc": "tap-spaaza-users download tests",
            "target": {"action": "export", "export_index": "users", "export_format": "csv"},
            "trigger": {"once": sb.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
        response = self.session.post(f"{sb.url}/tasks", json=body, timeout=10)
        response.raise_for_status()
        self.task_id: int = response.json()["id"]
        deadline = time.monotonic() + 20
        while self._state() != "DONE":
            assert time.monotonic() < deadline, "export task did not finish"
            time.sleep(0.02)
        self.urls_given = 0

    def _state(self) -> str:
        response = self.session.get(f"{self.sb.url}/tasks/{self.task_id}", timeout=10)
        response.raise_for_status()
        return str(response.json()["state"]["code"])

    def download_url(self) -> str:
        """Ask the API for a fresh pre-signed URL (what the tap's url_provider does)."""
        self.urls_given += 1
        response = self.session.get(f"{self.sb.url}/tasks/{self.task_id}/download_url", timeout=10)
        response.raise_for_status()
        return str(response.json()["url"])

    def stored_bytes(self) -> bytes:
        """The file exactly as the sandbox stored it."""
        path = self.sb.tasks[self.task_id].file
        assert path is not None
        return path.read_bytes()


def fetch(
    urls: Callable[[], str], dest: Path, *, max_url_refreshes: int = 3, max_resumes: int = 5
) -> Fetched:
    return fetch_to(
        urls,
        dest,
        timeout=5.0,
        user_agent=USER_AGENT,
        logger=LOGGER,
        max_url_refreshes=max_url_refreshes,
        max_resumes=max_resumes,
        max_retries=5,
        backoff_base=0.01,
        backoff_cap=0.02,
    )


def storage_requests(sb: Sandbox) -> list[Any]:
    return [r for r in sb.requests if r.server == "storage"]


def expected_record(raw: dict[str, str]) -> dict[str, Any]:
    """Type a row of `sb.users()` (the canonical dialect) the way the contract says."""
    typed: dict[str, Any] = {}
    for name, kind in USER_COLUMNS.items():
        value = raw.get(name, "")
        if value == "":
            typed[name] = None
        elif kind is ColumnType.INTEGER:
            typed[name] = int(value)
        elif kind is ColumnType.BOOLEAN:
            typed[name] = {"true": True, "false": False}[value]
        elif kind is ColumnType.DECIMAL:
            typed[name] = Decimal(value)
        elif kind is ColumnType.DATE_TIME:
            typed[name] = value.replace(" ", "T") + "+00:00"
        else:
            typed[name] = value
    return typed


def read_records(path: Path, task_id: int, **kwargs: Any) -> tuple[list[dict[str, Any]], Any]:
    with UsersCsvReader(path, task_id=task_id, logger=LOGGER, **kwargs) as reader:
        return list(reader), reader


@pytest.fixture
def sb(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    return sandbox_factory(users=300, seed=3)


def test_download_is_byte_identical_and_carries_no_credentials(sb: Sandbox, tmp_path: Path) -> None:
    export = Export(sb)
    result = fetch(export.download_url, tmp_path / "f.csv")
    assert result.path.read_bytes() == export.stored_bytes()
    assert result.bytes == len(export.stored_bytes())
    assert (result.resumes, result.url_refreshes, result.retries) == (0, 0, 0)
    [request] = storage_requests(sb)
    assert request.status == 200
    names = {name.lower() for name in request.headers}
    assert "authorization" not in names
    assert "cookie" not in names
    assert request.headers.get("User-Agent") == USER_AGENT


def test_expired_download_url_is_refreshed_not_recreated(sb: Sandbox, tmp_path: Path) -> None:
    export = Export(sb)
    sb.inject("url_expired")
    result = fetch(export.download_url, tmp_path / "f.csv")
    assert result.url_refreshes == 1
    assert export.urls_given == 2
    assert len(sb.tasks) == 1
    assert [r.status for r in storage_requests(sb)] == [403, 200]
    assert result.path.read_bytes() == export.stored_bytes()


def test_url_past_its_lifetime_is_replaced_by_a_fresh_one(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(users=50, seed=4, url_ttl_seconds=60)
    export = Export(sb)
    stale = export.download_url()
    sb.clock.advance(120)
    urls = iter([stale])
    result = fetch(lambda: next(urls, None) or export.download_url(), tmp_path / "f.csv")
    assert result.url_refreshes == 1
    assert result.path.read_bytes() == export.stored_bytes()


def test_url_refused_again_and_again_ends_in_a_clear_error(sb: Sandbox, tmp_path: Path) -> None:
    export = Export(sb)
    sb.inject("url_expired", times=10)
    with pytest.raises(SpaazaDownloadError, match=r"HTTP 403.*after 3 URL refreshes") as caught:
        fetch(export.download_url, tmp_path / "f.csv", max_url_refreshes=3)
    assert export.urls_given == 4
    assert "X-Amz" not in str(caught.value)


def test_dropped_connection_resumes_with_range(sb: Sandbox, tmp_path: Path) -> None:
    export = Export(sb)
    sb.inject("drop_connection", after_bytes=5000)
    result = fetch(export.download_url, tmp_path / "f.csv")
    assert result.resumes == 1
    second = storage_requests(sb)[1]
    assert second.headers.get("Range") == "bytes=5000-"
    assert second.status == 206
    assert result.path.read_bytes() == export.stored_bytes()


def test_short_body_resumes_from_the_last_byte(sb: Sandbox, tmp_path: Path) -> None:
    export = Export(sb)
    size = len(export.stored_bytes())
    sb.inject("short_body", missing_bytes=1234)
    result = fetch(export.download_url, tmp_path / "f.csv")
    assert result.resumes == 1
    assert storage_requests(sb)[1].headers.get("Range") == f"bytes={size - 1234}-"
    assert result.path.read_bytes() == export.stored_bytes()


def test_drops_beyond_the_resume_limit_fail(sb: Sandbox, tmp_path: Path) -> None:
    export = Export(sb)
    sb.inject("drop_connection", after_bytes=100, times=10)
    with pytest.raises(SpaazaDownloadError, match=r"after 0 URL refreshes, 2 resumes"):
        fetch(export.download_url, tmp_path / "f.csv", max_resumes=2)


@pytest.mark.parametrize("mode", ["content-encoding", "raw"])
def test_gzip_is_kept_raw_and_decoded_when_read(sb: Sandbox, tmp_path: Path, mode: str) -> None:
    sb.inject("gzip", mode=mode)
    export = Export(sb)
    sb.inject("drop_connection", after_bytes=3000)  # Range offsets are offsets in the gzip bytes
    result = fetch(export.download_url, tmp_path / "f.csv")
    assert result.path.read_bytes()[:2] == b"\x1f\x8b"
    assert result.path.read_bytes() == export.stored_bytes()
    assert result.content_encoding == ("gzip" if mode == "content-encoding" else None)
    records, _ = read_records(result.path, export.task_id)
    assert records == [expected_record(raw) for raw in sb.users()]


DIALECTS: dict[str, dict[str, Any]] = {
    "canonical": {},
    "bom_crlf": {"bom": True, "crlf": True},
    "booleans_1_0": {"booleans": "1_0"},
    "booleans_True_False": {"booleans": "True_False"},
    "booleans_yes_no": {"booleans": "yes_no"},
    "iso_z": {"datetimes": "iso_z"},
    "iso_offset": {"datetimes": "iso_offset"},
    "shuffled_extra_missing": {
        "column_order": "shuffled",
        "extra_columns": ["shoe_size"],
        "missing_columns": ["gender", "loyalty_status_date_reached"],
    },
}


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_every_dialect_reads_as_the_sandbox_users(
    sb: Sandbox, tmp_path: Path, dialect: str
) -> None:
    options = DIALECTS[dialect]
    sb.set_csv_dialect(**options)
    export = Export(sb)
    result = fetch(export.download_url, tmp_path / "f.csv")
    records, reader = read_records(result.path, export.task_id)
    expected = [expected_record(raw) for raw in sb.users()]
    for name in options.get("missing_columns", []):
        for record in expected:
            record[name] = None
    for name in options.get("extra_columns", []):
        for record in records:
            assert record.pop(name) == f"extra {name} {record['id']}"
    key = lambda record: record["id"]  # noqa: E731
    assert sorted(records, key=key) == sorted(expected, key=key)
    assert reader.rows == len(expected) == 300
    assert reader.extra_columns == options.get("extra_columns", [])
    assert sorted(reader.missing_columns) == sorted(options.get("missing_columns", []))


def test_malformed_rows_fail_by_default_naming_the_task(sb: Sandbox, tmp_path: Path) -> None:
    sb.inject("malformed_rows", rows=[5], problem="bad_value", column="recency")
    export = Export(sb)
    result = fetch(export.download_url, tmp_path / "f.csv")
    with pytest.raises(SpaazaInvalidRowError) as caught:
        read_records(result.path, export.task_id)
    message = str(caught.value)
    assert f"task {export.task_id}" in message
    assert "'recency'" in message
    assert "'not-a-number'" in message
    line = int(message.split("line ", 1)[1].split(":", 1)[0])
    text = result.path.read_text(encoding="utf-8")
    assert line >= 6  # header + 5 rows, some spanning several lines
    assert ",not-a-number," in text.splitlines()[line - 1]


def test_malformed_rows_are_skipped_and_counted_on_request(sb: Sandbox, tmp_path: Path) -> None:
    sb.inject("malformed_rows", rows=[2, 7], problem="field_count")
    export = Export(sb)
    result = fetch(export.download_url, tmp_path / "f.csv")
    records, reader = read_records(result.path, export.task_id, on_invalid_row="skip")
    assert reader.skipped_rows == 2
    assert reader.rows == len(records) == 298
    good = {record["id"] for record in records}
    assert len(good) == 298
    assert good < {int(raw["id"]) for raw in sb.users()}


def slow_fetch(export: Export, dest: Path, **settings: Any) -> Fetched:
    """Download with the test's own deadline or progress cadence."""
    return fetch_to(
        export.download_url,
        dest,
        timeout=5.0,
        user_agent=USER_AGENT,
        logger=LOGGER,
        max_retries=2,
        backoff_base=0.01,
        backoff_cap=0.02,
        **settings,
    )


def test_progress_shows_bytes_of_total_percent_speed_and_time_left(
    sb: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    export = Export(sb)
    size = len(export.stored_bytes())
    sb.set_options(storage_bytes_per_second=size / 1.2)  # about 1.2 s

    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        result = slow_fetch(export, tmp_path / "f.csv", progress_every=0.3)

    assert result.path.read_bytes() == export.stored_bytes()
    lines = [r.getMessage() for r in caplog.records if "Export download: " in r.getMessage()]
    assert 2 <= len(lines) <= 5
    total = f"{size / 1e6:.1f} MB"
    for line in lines:
        assert re.fullmatch(
            rf"Export download: \d+\.\d MB of {re.escape(total)} \(\d+%\), \d+\.\d MB/s, "
            r"about \d+ s left",
            line,
        ), line
    percents = [int(re.findall(r"\((\d+)%\)", line)[0]) for line in lines]
    assert percents == sorted(percents)
    assert 0 < percents[0] < 100


def test_download_past_its_deadline_fails_naming_the_setting(sb: Sandbox, tmp_path: Path) -> None:
    export = Export(sb)
    size = len(export.stored_bytes())
    sb.set_options(storage_bytes_per_second=size / 3)  # about 3 s, above the floor

    started = time.monotonic()
    with pytest.raises(SpaazaDownloadError) as caught:
        slow_fetch(export, tmp_path / "f.csv", deadline_seconds=0.5, task_id=1001)

    assert time.monotonic() - started < 2.5
    message = str(caught.value)
    assert message.startswith(
        "Export download failed: the download did not finish within 0.5 s (task_timeout_minutes)"
    )
    assert " bytes received" in message
    assert f"of {size}" in message
    assert "export task 1001 is kept" in message
