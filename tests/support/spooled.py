"""Download into a spool, as the tap does, and copy it to a file the test can read."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.download.fetch import DownloadResult, download_export
from tap_spaaza_users.download.spool import Spool

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


@dataclass(frozen=True)
class Fetched:
    """A finished download (its counters) and the file its bytes were copied to."""

    result: DownloadResult
    path: Path

    def __getattr__(self, name: str) -> Any:
        """The download's counters: ``bytes``, ``resumes``, ``url_refreshes``, ..."""
        return getattr(self.result, name)


def fetch_to(urls: Callable[[], str], dest: Path, **settings: Any) -> Fetched:
    """Run ``download_export`` into a spool, then copy the spool to ``dest``.

    Args:
        urls: The URL provider.
        dest: Where the bytes are copied once the download is proven whole.
        **settings: ``download_export``'s keyword arguments.

    Returns:
        The download's result and ``dest``.
    """
    with Spool() as spool:
        result = download_export(urls, spool, **settings)
        with spool.reader() as reader, dest.open("wb") as out:
            shutil.copyfileobj(reader, out)
    return Fetched(result, dest)
