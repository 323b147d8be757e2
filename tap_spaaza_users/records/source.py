"""The export file's bytes as the reader reads them: gzip undone when its magic bytes say so."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from tap_spaaza_users.contract import GZIP_MAGIC
from tap_spaaza_users.errors import SpaazaCorruptExportError

if TYPE_CHECKING:
    import io


def open_export_bytes(
    source: Path | io.BufferedReader, task_id: int | None = None
) -> io.BufferedIOBase:
    """Open the export's bytes, gzip undone when the magic bytes say so.

    Args:
        source: The file, or a reader of it (such as a spool's) at its first byte.
        task_id: The export task, named when its gzip stream turns out broken.

    Returns:
        The bytes; a broken gzip stream raises SpaazaCorruptExportError while reading.
    """
    binary: io.BufferedReader = source.open("rb") if isinstance(source, Path) else source
    if binary.peek(2)[:2] != GZIP_MAGIC:
        return binary
    return _CheckedGzip(binary, task_id)


_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


class _CheckedGzip(gzip.GzipFile):
    """A gzip reader whose broken stream (truncated, bad CRC) is one clear error, not a trace."""

    def __init__(self, binary: io.BufferedReader, task_id: int | None) -> None:
        super().__init__(fileobj=binary, mode="rb")
        self._binary = binary
        self._task_id = task_id

    def _broken(self, exc: Exception) -> SpaazaCorruptExportError:
        task = f"Export task {self._task_id}" if self._task_id is not None else "The export"
        why = "it ends early" if isinstance(exc, EOFError) else str(exc)
        return SpaazaCorruptExportError(f"{task}: the gzip file is corrupt ({why})")

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except _GZIP_ERRORS as exc:
            raise self._broken(exc) from None

    def read1(self, size: int = -1) -> bytes:
        try:
            return super().read1(size)
        except _GZIP_ERRORS as exc:
            raise self._broken(exc) from None

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._binary.close()
