"""The export file on local disk: an unlinked temporary file that no crash can leave behind.

The file has no name from the moment it exists (``O_TMPFILE`` where the system has it,
created and unlinked at once elsewhere), so the users' personal data it holds goes with the
process, even after ``kill -9``. The download writes it (the writer side, in its own thread);
the reader side reads it from the start, and blocks until the writer has written more or has
finished, so the CSV is parsed while the download is still running. When the writer starts
the file over (storage sent it again from byte 0, or it arrived corrupt), a reader that had
begun raises ``SpoolRestartedError`` and its owner reads the new file from its start.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from typing import TYPE_CHECKING

from tap_spaaza_users.contract import GZIP_MAGIC
from tap_spaaza_users.errors import local_io_error

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Buffer, Self

READ_SIZE = 1024 * 1024
_HAS_PREAD = hasattr(os, "pread")


class SpoolRestartedError(Exception):
    """The writer started the file over (storage sent it again from its start).

    A reader that had read some of the file must read it again from byte 0; what it made of
    the old bytes (rows emitted) stands, and the new file's rows are read in full.
    """


class SpoolClosedError(Exception):
    """The spool was closed (its reader gave up): the writer has nowhere to write."""


class Spool:
    """An unlinked temporary file with a writer side and any number of followers.

    The writer appends (``write``), states the size it expects (``announce``), starts over
    (``restart``) and ends (``finish`` once the file is proven whole, or ``abort`` with the
    reason); ``reader()`` opens a reader from byte 0 that blocks until more bytes or the end
    are known. Use as a context manager: closing frees the disk space.
    """

    def __init__(self, directory: str | None = None, *, task_id: int | None = None) -> None:
        """Create the file in ``directory`` (default: the system's temporary directory).

        Raises:
            SpaazaLocalIOError: When the file cannot be created there.
        """
        self.directory = directory or tempfile.gettempdir()
        self.task_id = task_id
        try:
            self._file = tempfile.TemporaryFile(dir=self.directory)  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise local_io_error(exc, "creating the export file", self.directory, task_id) from None
        self._changed = threading.Condition()
        self._size = 0
        self._announced: int | None = None
        self._generation = 0
        self._finished = False
        self._closed = False
        self._error: BaseException | None = None

    def __enter__(self) -> Self:
        """The spool itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the file (its space is freed)."""
        self.close()

    def close(self) -> None:
        """Close the file; a writer still writing gets SpoolClosedError, a reader ValueError."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            self._file.close()

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def finished(self) -> bool:
        """Whether the writer has finished (the file is whole)."""
        return self._finished and self._error is None

    # The writer side.

    def write(self, data: Buffer) -> None:
        """Append ``data`` and wake the readers.

        Raises:
            SpaazaLocalIOError: When the disk refuses it (full, removed, read-only).
            SpoolClosedError: When the spool was closed (nobody reads any more).
        """
        with self._changed:
            if self._closed:
                raise SpoolClosedError
            try:
                written = self._file.write(data)
                self._file.flush()
            except OSError as exc:
                where, task_id = self.directory, self.task_id
                raise local_io_error(exc, "writing the export file", where, task_id) from None
            self._size += written
            self._changed.notify_all()

    def announce(self, size: int | None) -> None:
        """State the size the file will have, when storage said it (readers may start early)."""
        with self._changed:
            self._announced = size
            self._changed.notify_all()

    def restart(self) -> None:
        """Discard every byte: the file is written again from its start.

        Readers that have read from the old file raise SpoolRestartedError on their next read.
        """
        with self._changed:
            if self._closed:
                raise SpoolClosedError
            self._file.seek(0)
            self._file.truncate()
            self._size = 0
            self._announced = None
            self._generation += 1
            self._finished = False
            self._changed.notify_all()

    def finish(self) -> None:
        """Mark the file whole (proven complete and checked): readers read to its end."""
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def abort(self, error: BaseException) -> None:
        """End the file with an error that its readers raise on their next read."""
        with self._changed:
            self._error = error
            self._finished = True
            self._changed.notify_all()

    # The reader side.

    def reader(self, *, min_bytes: int = 0) -> SpoolReader:
        """A reader from byte 0 that follows the writer (blocks until bytes or the end).

        Args:
            min_bytes: The reader's first read waits until the file is whole, or this many
                bytes of it are written or announced (0: as soon as there are two bytes, so
                a ``peek`` sees the gzip magic).

        Returns:
            A buffered binary reader; closing it leaves the spool open.
        """
        return SpoolReader(_SpoolRaw(self, max(min_bytes, len(GZIP_MAGIC))))

    def _start(self, min_bytes: int) -> int:
        """Wait until a reader may start; the generation of the file it then reads."""
        with self._changed:
            while not self._finished and not self._closed:
                announced = self._announced or 0
                if self._size >= min_bytes or announced >= min_bytes:
                    break
                self._changed.wait()
            return self._generation

    def _read_at(self, position: int, buffer: memoryview, generation: int) -> int:
        """Read into ``buffer`` from ``position``, waiting for the writer; 0 at the end."""
        with self._changed:
            while True:
                self._check(generation)
                if position < self._size:
                    break
                if self._finished:
                    return 0
                self._changed.wait()
            available = min(len(buffer), self._size - position)
            if not _HAS_PREAD:  # pragma: no cover - Windows: share the writer's position
                end = self._file.tell()
                self._file.seek(position)
                data = self._file.read(available)
                self._file.seek(end)
        if _HAS_PREAD:
            data = os.pread(self._file.fileno(), available, position)
            with self._changed:  # a restart while reading may have truncated under us
                self._check(generation)
        buffer[: len(data)] = data
        return len(data)

    def _check(self, generation: int) -> None:
        """Raise what a reader of ``generation`` must know: closed, aborted, started over."""
        if self._closed:
            msg = "the export file is closed"
            raise ValueError(msg)
        if self._error is not None:
            raise self._error
        if self._generation != generation:
            raise SpoolRestartedError

    def _settle(self, generation: int) -> None:
        """Wait for the writer's verdict on the file a reader of ``generation`` read."""
        with self._changed:
            while not self._finished and not self._closed and self._generation == generation:
                self._changed.wait()
            self._check(generation)


class SpoolReader(io.BufferedReader):
    """A buffered reader of a spool; ``settle`` waits for the writer's verdict on the file."""

    def __init__(self, raw: _SpoolRaw) -> None:
        """Buffer ``raw``'s reads."""
        super().__init__(raw, buffer_size=READ_SIZE)
        self._spool_raw = raw

    def settle(self) -> None:
        """Wait until the writer has finished, failed or started over (even after close).

        A reader that meets bad data while the file is still being downloaded calls this
        first: the bad data may be the download's fault, to be fixed by downloading again.

        Raises:
            SpoolRestartedError: When the writer started the file over since this reader began.
        """
        self._spool_raw.settle()


class _SpoolRaw(io.RawIOBase):
    """A raw reader of a spool with its own position (``pread``: the writer's is untouched)."""

    def __init__(self, spool: Spool, min_bytes: int) -> None:
        super().__init__()
        self._spool = spool
        self._min_bytes = min_bytes
        self._position = 0
        self._generation: int | None = None  # taken when the first read starts

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        spool = self._spool
        if self._generation is None:
            self._generation = spool._start(self._min_bytes)  # noqa: SLF001 - the spool's own reader
        count = spool._read_at(self._position, memoryview(buffer).cast("B"), self._generation)  # noqa: SLF001
        self._position += count
        return count

    def settle(self) -> None:
        spool = self._spool
        generation = spool._generation if self._generation is None else self._generation  # noqa: SLF001
        spool._settle(generation)  # noqa: SLF001
