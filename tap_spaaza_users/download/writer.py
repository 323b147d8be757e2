"""Write the body into the spool as it arrives: hashed, gzip-checked, paced, progress logged."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tap_spaaza_users.download.integrity import BodyCheck, new_md5
from tap_spaaza_users.logs.fields import log_fields

if TYPE_CHECKING:
    import logging

    import requests

    from tap_spaaza_users.download.spool import Spool

CHUNK_SIZE = 1024 * 1024
#: The slowest progress a download may make over a window (then it is resumed).
FLOOR_BYTES_PER_SECOND = 16 * 1024


class TooSlowError(Exception):
    """The body arrived slower than the floor over a whole window."""


class PastDeadlineError(Exception):
    """The download as a whole took longer than its deadline."""


def _megabytes(count: float) -> str:
    return f"{count / 1e6:.1f} MB"


class Writer:
    """Appends raw body bytes to the spool, hashes them, watches the pace and logs progress."""

    def __init__(self, spool: Spool, logger: logging.Logger, pace: Pace) -> None:
        """Start at the spool's first byte, with nothing hashed or stated yet."""
        self.spool = spool
        self.logger = logger
        self.pace = pace
        self.offset = 0
        self.md5 = new_md5()
        self.check = BodyCheck()
        self.encoding: str | None = None
        self.etag: str | None = None
        self.total: int | None = None
        self.length_unproven = False

    def restart(self) -> None:
        """Discard what was written: storage is sending the file from its start."""
        self.spool.restart()
        self.offset = 0
        self.md5 = new_md5()
        self.check.restart()

    def drain(self, response: requests.Response) -> None:
        """Copy the body to the spool; raises on a dropped connection (bytes received are kept).

        `read1` hands over whatever has arrived, so a stall that ends in a read timeout loses
        nothing already received (older urllib3 without it: whole chunks only).

        Raises:
            TooSlowError: When the body arrives slower than the floor over a window.
        """
        raw = response.raw
        if hasattr(raw, "read1"):
            chunks = iter(lambda: raw.read1(CHUNK_SIZE, decode_content=False), b"")
        else:  # pragma: no cover - urllib3 < 2.3
            chunks = raw.stream(CHUNK_SIZE, decode_content=False)
        self.pace.begin(self.offset)
        for chunk in chunks:
            self.spool.write(chunk)
            self.md5.update(chunk)
            self.check.feed(chunk)
            self.offset += len(chunk)
            self.pace.check(self.offset, self)

    def progress(self, elapsed: float, rate: float) -> None:
        """Log bytes of total, percent, MB/s and the time left."""
        speed = f"{rate / 1e6:.1f} MB/s"
        fields = log_fields(
            bytes=self.offset, total_bytes=self.total, megabytes_per_second=rate / 1e6
        )
        if self.total:
            left = (self.total - self.offset) / rate if rate > 0 else float("inf")
            self.logger.info(
                "Export download: %s of %s (%.0f%%), %s, about %s left",
                _megabytes(self.offset),
                _megabytes(self.total),
                100 * self.offset / self.total,
                speed,
                f"{left:.0f} s" if left != float("inf") else "unknown time",
                extra=fields,
            )
        else:
            self.logger.info(
                "Export download: %s so far in %.0f s (size not stated), %s",
                _megabytes(self.offset),
                elapsed,
                speed,
                extra=fields,
            )


class Pace:
    """The download's deadline, its floor on progress, and the cadence of progress lines."""

    def __init__(
        self, *, window: float, deadline: float | None, progress_every: float, started: float
    ) -> None:
        """Measure from `started`: the floor over `window` seconds, the whole to `deadline`."""
        self.window = window
        self.deadline = deadline
        self.progress_every = progress_every
        self.started = started
        self.mark_time = started
        self.mark_offset = 0
        self.last_log = started
        self.last_log_offset = 0

    def begin(self, offset: int) -> None:
        """A body starts: its progress is measured from here."""
        self.mark_time = time.monotonic()
        self.mark_offset = offset

    def past_deadline(self) -> bool:
        """Whether the download as a whole took longer than its deadline."""
        return self.deadline is not None and time.monotonic() - self.started > self.deadline

    def check(self, offset: int, writer: Writer) -> None:
        """After each chunk: enforce the deadline and the floor, log progress now and then."""
        now = time.monotonic()
        if self.past_deadline():
            raise PastDeadlineError
        if now - self.mark_time >= self.window:
            rate = (offset - self.mark_offset) / (now - self.mark_time)
            if rate < FLOOR_BYTES_PER_SECOND:
                why = (
                    f"storage sent {rate:.0f} bytes/s over the last {now - self.mark_time:.0f} s, "
                    f"below the floor of {FLOOR_BYTES_PER_SECOND} bytes/s"
                )
                raise TooSlowError(why)
            self.mark_time, self.mark_offset = now, offset
        if now - self.last_log >= self.progress_every:
            rate = (offset - self.last_log_offset) / (now - self.last_log)
            self.last_log, self.last_log_offset = now, offset
            writer.progress(now - self.started, rate)
