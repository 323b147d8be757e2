"""BATCH output: JSON Lines files (gzip or plain), selection and stream maps applied, STATE last.

The SDK's own batch path gzips whatever ``compression`` says, writes records before field
selection and stream maps, and announces one manifest for every stream map alias. Here each
alias gets its own files, built from the records the RECORD path would send; the files are
completed and announced (BATCH messages) before any STATE message that covers them.
"""

from __future__ import annotations

import contextlib
import io
import queue
import subprocess
import sys
import threading
import uuid
from typing import TYPE_CHECKING, Any, BinaryIO

from isal import isal_zlib
from singer_sdk.contrib.msgspec import encoder as json_encoder
from singer_sdk.helpers._batch import BaseBatchFileEncoding, SDKBatchMessage
from upath import UPath

from tap_spaaza_users.batch_files import announced
from tap_spaaza_users.errors import SpaazaConfigError, SpaazaLocalIOError
from tap_spaaza_users.sdk_hooks.output import enlarge_pipe
from tap_spaaza_users.sdk_hooks.shaping import RecordShaper, plain_alias

if TYPE_CHECKING:
    from singer_sdk import Stream
    from singer_sdk.helpers._batch import BatchConfig

#: gzip level of batch files (ISA-L's levels are 0 to 3): 1 is as small as ``gzip -1``.
GZIP_LEVEL = 1
#: A gzip member (header and trailer) around the deflate stream.
GZIP_WBITS = 31
#: Records are encoded this many at a time, in one ``encode_lines`` call (about 40% less
#: time than one ``encode_into`` per record), and handed to the file as one piece of ~1 MB.
ENCODE_RECORDS = 700
#: Pieces waiting for the writing thread (bounds memory: a few MB).
QUEUED_WRITES = 4
COMPRESSIONS = ("gzip", "none")


class _OpenFile:
    """One batch file being written, by this thread or, where a write may wait long, another.

    gzip is ISA-L's deflate (``isal``) at level 1: files as small as ``gzip -1``'s for about a
    third of its CPU (300,000 users: 0.6 against 2.7 CPU s for 416 MB of JSON lines). A local
    file is compressed by ISA-L in a process of its own (``python -m isal.igzip``): in a thread
    of this process the compressor and the CSV reader take turns at the GIL on every block,
    measured about 5% slower in wall time for the same CPU. Elsewhere (an fsspec file with no
    descriptor, such as s3://), ISA-L in the thread.

    A local file (or the pipe into the ISA-L process) is written by the reading thread itself,
    a piece of ~1 MB at a time: a writing thread for it cost the reader about 10% more CPU
    (300,000 users: 6.1-6.6 against 5.5-5.6 user CPU s), the two threads handing the GIL back
    and forth on every piece. Storage without a descriptor (s3://, whose writes upload) and
    in-thread compression keep the writing thread, so the upload or the deflate overlaps the
    reading.
    """

    def __init__(self, path: UPath, name: str, *, compress: bool) -> None:
        self.name = name
        self.path = path
        self.raw: BinaryIO = path.open("wb")
        self.process = _gzip_process(self.raw) if compress else None
        self.out: BinaryIO = self.raw
        self._deflate = None
        if self.process is not None and self.process.stdin is not None:
            self.out = self.process.stdin  # type: ignore[assignment]
            enlarge_pipe(self.out.fileno())
        elif compress:
            self._deflate = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, GZIP_WBITS)
        self.records: list[dict[str, Any]] = []
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_WRITES)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if self._deflate is not None or not _has_descriptor(self.raw):
            self._thread = threading.Thread(target=self._write_chunks, daemon=True)
            self._thread.start()

    def _write_chunks(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._error is None:
                try:
                    self.out.write(self._deflate.compress(chunk) if self._deflate else chunk)
                except BaseException as exc:  # noqa: BLE001 - raised again in the reader's thread
                    self._error = exc

    def encode(self) -> None:
        """Encode the waiting records as JSON lines and hand them to the writing thread."""
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self.out.write(json_encoder.encode_lines(self.records))
        else:
            self._chunks.put(json_encoder.encode_lines(self.records))
        self.records.clear()

    def close(self) -> None:
        """Write what is left, wait for the thread, and close the file."""
        if self.records:
            self.encode()
        if self._thread is not None:
            self._chunks.put(None)
            self._thread.join()
        try:
            if self._error is None and self._deflate is not None:
                self.raw.write(self._deflate.flush())
            if self.out is not self.raw:
                self.out.close()
        except BaseException as exc:  # noqa: BLE001 - raised below, after the file is closed
            self._error = exc
        if self.process is not None and self.process.wait() != 0:
            self._error = self._error or OSError(f"gzip exited with {self.process.returncode}")
        self.raw.close()
        if self._error is not None:
            raise self._error


def _has_descriptor(raw: BinaryIO) -> bool:
    """Whether ``raw`` is a local file (it has a file descriptor)."""
    try:
        raw.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return False
    return True


def _gzip_process(raw: BinaryIO) -> subprocess.Popen[bytes] | None:
    """ISA-L's gzip in a process of its own writing into ``raw``, if ``raw`` is a local file.

    None (ISA-L in the writing thread instead) where ``raw`` has no descriptor, or where the
    interpreter does not know its own path (an embedding may leave ``sys.executable`` empty).
    """
    if not _has_descriptor(raw) or not sys.executable:
        return None
    command = [sys.executable, "-m", "isal.igzip", f"-{GZIP_LEVEL}", "-c"]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=raw)  # noqa: S603


class BatchFiles:
    """The batch files of one sync: one open file per stream map alias, cut at ``batch_size``."""

    def __init__(self, stream: Stream, batch_config: BatchConfig) -> None:
        """Check the encoding and prepare the storage.

        Args:
            stream: The stream.
            batch_config: The ``batch_config`` setting.

        Raises:
            SpaazaConfigError: For an encoding other than jsonl with gzip or none.
        """
        encoding = batch_config.encoding
        compression = (encoding.compression or "none").lower()
        if encoding.format != "jsonl" or compression not in COMPRESSIONS:
            msg = (
                "Setting batch_config.encoding must be format 'jsonl' with compression "
                f"'gzip' or 'none', not {encoding.format!r} with {encoding.compression!r}."
            )
            raise SpaazaConfigError(msg)
        self.stream = stream
        self.encoding = BaseBatchFileEncoding(format="jsonl", compression=compression)
        self.compress = compression == "gzip"
        self.storage = batch_config.storage
        self.root = UPath(self.storage.root, **self.storage.params)
        self.batch_size = batch_config.batch_size
        self.shaper = RecordShaper.of(stream)
        #: Records from the stream not yet in a file (``add_waiting`` puts them there).
        self.waiting: list[dict[str, Any]] = []
        self.sync_id = f"{stream.tap_name}--{stream.name}-{uuid.uuid4()}"
        self.files: dict[str, _OpenFile] = {}
        self.pending = 0
        self.serial = 0

    def add(self, record: dict[str, Any]) -> None:
        """Shape a record and append it to each alias's file; cut the files when full.

        Args:
            record: A typed record from the stream.

        Raises:
            SpaazaLocalIOError: When a file cannot be written (a full disk).
        """
        try:
            for alias, mapped in self.shaper.shape(record):
                file = self.files.get(alias) or self._open(alias)
                file.records.append(mapped)
                if len(file.records) >= ENCODE_RECORDS:
                    file.encode()
        except OSError as exc:
            raise self._io_error(exc) from None
        self.pending += 1
        if self.pending >= self.batch_size:
            self.complete()

    def add_waiting(self) -> None:
        """Put the records in ``waiting`` into the files (shaped); cut the files when full.

        Records that go out as they are (nothing deselected, no map that changes them) join
        their file a block at a time; others one by one through ``add``.

        Raises:
            SpaazaLocalIOError: When a file cannot be written (a full disk).
        """
        waiting, self.waiting = self.waiting, []
        alias = plain_alias(self.stream, self.shaper)
        if alias is None:
            for record in waiting:
                self.add(record)
            return
        start = 0
        while start < len(waiting):
            part = waiting[start : start + self.batch_size - self.pending]
            start += len(part)
            try:
                file = self.files.get(alias) or self._open(alias)
                file.records.extend(part)
                if len(file.records) >= ENCODE_RECORDS:
                    file.encode()
            except OSError as exc:
                raise self._io_error(exc) from None
            self.pending += len(part)
            if self.pending >= self.batch_size:
                self.complete()

    def complete(self) -> None:
        """Close the open files and announce each in a BATCH message (nothing when none).

        Records still ``waiting`` go into the files first.

        Raises:
            SpaazaLocalIOError: When a file cannot be completed (a full disk); every file of
                this round stays in ``files`` for ``discard`` to delete.
        """
        if self.waiting:
            self.add_waiting()
        files, pending = self.files, self.pending
        try:
            for file in files.values():
                file.close()
        except OSError as exc:
            raise self._io_error(exc) from None
        self.files, self.pending = {}, 0
        for alias, file in files.items():
            self.stream._tap.write_message(  # noqa: SLF001 - the tap's own writer
                SDKBatchMessage(
                    stream=alias,
                    encoding=self.encoding,
                    manifest=[self.storage.get_url(file.name)],
                )
            )
        if files:
            announced(
                self.stream.stream_state, [self.storage.get_url(f.name) for f in files.values()]
            )
            self.stream.state_manager.is_flushed = False
            self.stream.logger.info(
                "Wrote %d batch file(s) of %d records (%s)", len(files), pending, ", ".join(files)
            )

    def discard(self) -> None:
        """Delete every file never announced (the sync failed), whatever else fails.

        A file that cannot even be closed (its disk is full) is deleted all the same: it holds
        personal data and no target will ever load it.
        """
        files, self.files = self.files, {}
        for file in files.values():
            with contextlib.suppress(BaseException):
                file.close()
            with contextlib.suppress(OSError):
                file.path.unlink(missing_ok=True)

    def _io_error(self, exc: OSError) -> SpaazaLocalIOError:
        """The one line for a batch file that cannot be written."""
        reason = exc.strerror or str(exc) or type(exc).__name__
        return SpaazaLocalIOError(
            f"Writing a BATCH file in {self.storage.root} failed ({reason}): free space there "
            "(or point batch_config.storage.root elsewhere), then run the sync again; the "
            "unfinished files are removed and the bookmark stays where it was"
        )

    def _open(self, alias: str) -> _OpenFile:
        """Start the next file of an alias."""
        self.serial += 1
        suffix = ".jsonl.gz" if self.compress else ".jsonl"
        name = f"{self.storage.prefix or ''}{self.sync_id}-{alias}-{self.serial}{suffix}"
        self.root.mkdir(parents=True, exist_ok=True)
        file = self.files[alias] = _OpenFile(self.root / name, name, compress=self.compress)
        return file
