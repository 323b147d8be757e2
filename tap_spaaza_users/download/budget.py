"""A download's budget of URL refreshes, resumes and retries, and its one-line error when spent."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tap_spaaza_users.api.retries import backoff_delay
from tap_spaaza_users.errors import SpaazaDownloadError


@dataclass
class Attempts:
    """Counters and limits of one download."""

    max_url_refreshes: int
    max_resumes: int
    max_retries: int
    backoff_base: float
    backoff_cap: float
    task_id: int | None = None
    url_refreshes: int = 0
    resumes: int = 0
    retries: int = 0

    def fail(self, why: str) -> SpaazaDownloadError:
        """The one-line error of a download that gave up, with the counters spent."""
        kept = f"; export task {self.task_id} is kept for it" if self.task_id is not None else ""
        return SpaazaDownloadError(
            f"Export download failed: {why} (after {self.url_refreshes} URL refreshes, "
            f"{self.resumes} resumes, {self.retries} retries). The bookmark did not move: "
            f"run the sync again{kept}; if it keeps failing, check the network path to storage."
        )

    def pause(self, attempt: int, retry_after: float | None = None) -> None:
        """Back off before the attempt (doubling, with jitter; Retry-After when stated)."""
        time.sleep(
            backoff_delay(max(attempt - 1, 0), self.backoff_base, self.backoff_cap, retry_after)
        )
