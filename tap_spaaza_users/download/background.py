"""The export download in a thread of its own, so a large file is parsed while it arrives."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.download.fetch import download_export
from tap_spaaza_users.download.spool import Spool, SpoolRestartedError
from tap_spaaza_users.errors import SpaazaError

if TYPE_CHECKING:
    import io
    import logging
    from collections.abc import Callable, Iterator
    from types import TracebackType

    from typing_extensions import Self

    from tap_spaaza_users.download.fetch import DownloadResult
    from tap_spaaza_users.download.spool import SpoolReader


#: Files at least this large (stated by storage, or received so far) are parsed while they
#: download; smaller ones once proven whole. Below it, overlap saves under half a second on a
#: 20 MB/s link, and reading only a proven file never emits a row that a corrupt or changed
#: download would make the tap send again.
OVERLAP_FROM_BYTES = 8 * 1024 * 1024
#: How long a reader that gave up waits for the download thread to notice (it is a daemon).
ABANDON_WAIT_SECONDS = 2.0


class BackgroundDownload:
    """``download_export`` in a thread of its own, so the file is read while it arrives.

    The thread writes the spool; the caller reads it (``spool.reader()``) in its own thread,
    the one that emits records. A failure of the download aborts the spool, so the reader
    raises the download's own error (the same one-line SpaazaError subclasses as ever) in the
    caller's thread, at its next read; ``result`` raises it too. Leaving the context closes
    the spool: a download the reader gave up on stops at its next chunk. The thread is a
    daemon, so one caught in a backoff pause never holds the process.
    """

    def __init__(
        self,
        url_provider: Callable[[], str],
        spool: Spool,
        **settings: Any,  # noqa: ANN401
    ) -> None:
        """Start downloading into ``spool``; ``settings`` are ``download_export``'s keywords."""
        self._spool = spool
        self._result: DownloadResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(url_provider, spool, settings),
            name=f"export-download-{settings.get('task_id')}",
            daemon=True,
        )
        self._thread.start()

    def _run(self, url_provider: Callable[[], str], spool: Spool, settings: dict[str, Any]) -> None:
        try:
            self._result = download_export(url_provider, spool, **settings)
        except BaseException as exc:  # noqa: BLE001 - the spool is aborted with it: the reader raises it
            self._error = exc

    def __enter__(self) -> Self:
        """The download in progress."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the spool (a download still running stops) and give the thread a moment."""
        self._spool.close()
        self._thread.join(ABANDON_WAIT_SECONDS)

    def result(self) -> DownloadResult:
        """Wait for the download to end.

        Returns:
            The download's size, duration and counters.

        Raises:
            BaseException: The download's failure, as ``download_export`` raised it.
        """
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._result is None:  # pragma: no cover - the thread always sets one or the other
            msg = "the download thread ended without a result"
            raise RuntimeError(msg)
        return self._result


def read_while_downloading(  # noqa: PLR0913 - keyword-only, each the download's or the reader's
    url_provider: Callable[[], str],
    read: Callable[[io.BufferedReader], Iterator[dict[str, Any]]],
    *,
    task_id: int,
    min_bytes: int,
    on_restart: Callable[[], None],
    logger: logging.Logger,
    **settings: Any,  # noqa: ANN401
) -> Iterator[dict[str, Any]]:
    """The records ``read`` makes of the task's file, read while the file downloads.

    What this overlap changes and what it keeps is told in the package's docstring.

    Args:
        url_provider: Returns a (fresh) pre-signed URL of the file.
        read: Makes records of the file's bytes.
        task_id: The export task.
        min_bytes: Files at least this large are parsed while they download.
        on_restart: Called when the file starts over, before it is read again.
        logger: Where the story is told.
        settings: ``download_export``'s other keywords (timeouts, retries, deadline).

    Yields:
        The records.
    """
    with (
        Spool(task_id=task_id) as spool,
        BackgroundDownload(
            url_provider, spool, task_id=task_id, logger=logger, **settings
        ) as download,
    ):
        while True:
            reader = spool.reader(min_bytes=min_bytes)
            try:
                yield from _settled(read(reader), reader)
                break
            except SpoolRestartedError:
                on_restart()
                logger.warning(
                    "Export task %d: storage is sending the file again from its start; "
                    "reading it again from its first row (rows already emitted are sent "
                    "again)",
                    task_id,
                )
        download.result()


def _settled(records: Iterator[dict[str, Any]], reader: SpoolReader) -> Iterator[dict[str, Any]]:
    """The records; bad data stands only once the download's verdict is in.

    Raises:
        SpoolRestartedError: When the file started over: read it again.
    """
    try:
        yield from records
    except SpaazaError:
        reader.settle()  # a restart, or the download's failure, explains it
        raise
