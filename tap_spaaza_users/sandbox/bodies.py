"""Storage bodies: streaming a file paced to a bandwidth, and the faults that spoil a body."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import threading
import time
from typing import IO, TYPE_CHECKING

from tap_spaaza_users.contract import GZIP_MAGIC

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from tap_spaaza_users.sandbox.faults import Fault

CHUNK = 64 * 1024
_GZIP_TRAILER = 8  # CRC32 and ISIZE, little-endian
#: a paced body is sent in pieces of at most this fraction of a second
_PACE_SLICE = 20


class Pacer:
    """Spaces out bytes so that those it paces leave at ``rate`` bytes per second at most.

    One pacer shared by several bodies is a link they share; one per body throttles that body.
    """

    def __init__(self, rate: float) -> None:
        """Pace at ``rate`` bytes per second."""
        self.rate = rate
        self._next = 0.0
        self._lock = threading.Lock()

    @property
    def chunk(self) -> int:
        """Return the largest piece worth sending at once at this rate."""
        return max(1, min(CHUNK, int(self.rate / _PACE_SLICE)))

    def pace(self, size: int) -> None:
        """Wait until ``size`` more bytes fit in the rate."""
        with self._lock:
            now = time.monotonic()
            # a pacer idle for longer than a slice starts afresh; a shorter lag (the time spent
            # sending) is caught up, so the rate holds
            idle = now - self._next > 1 / _PACE_SLICE
            self._next = (now if idle else self._next) + size / self.rate
            due = self._next
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def file_md5(path: Path) -> str:
    """Return the hex MD5 of a file (the ETag of a plain S3 object)."""
    with path.open("rb") as handle:
        return _handle_md5(handle)


def stream(handle: IO[bytes], start: int, limit: int, pacers: list[Pacer]) -> Iterator[bytes]:
    """Yield up to ``limit`` bytes of ``handle`` from ``start``, paced; close it at the end."""
    chunk = min([CHUNK, *(pacer.chunk for pacer in pacers)])
    with handle:
        handle.seek(start)
        left = limit
        while left > 0:
            data = handle.read(min(chunk, left))
            if not data:
                return
            left -= len(data)
            yield data
            for pacer in pacers:
                pacer.pace(len(data))


def fault_pacers(fault: Fault | None) -> list[Pacer]:
    """Return the pacer of a ``slow_download`` fault (default 1024 bytes/s), if that is it."""
    if fault is None or fault.kind != "slow_download":
        return []
    return [Pacer(float(fault.params.get("bytes_per_second", 1024)))]


def fault_limit(fault: Fault | None, handle: IO[bytes], start: int, length: int) -> int:
    """Return how many of ``length`` body bytes to send under a body fault."""
    if fault is None:
        return length
    half = max(1, length // 2)
    if fault.kind == "drop_connection":
        return min(length, int(fault.params.get("after_bytes", length // 2)))
    if fault.kind == "short_body":
        return max(0, length - int(fault.params.get("missing_bytes", half)))
    if fault.kind == "early_close":
        return line_cut(handle, start, min(length, int(fault.params.get("after_bytes", half))))
    return length


def line_cut(handle: IO[bytes], start: int, limit: int) -> int:
    """Return the length of the longest run of whole lines in ``limit`` bytes from ``start``."""
    end = start + limit
    while end > start:
        block_start = max(start, end - CHUNK)
        handle.seek(block_start)
        found = handle.read(end - block_start).rfind(b"\n")
        if found >= 0:
            return block_start + found + 1 - start
        end = block_start
    return 0


def corrupted(chunks: Iterable[bytes], at_byte: int) -> Iterator[bytes]:
    """Yield ``chunks`` with the first letter or digit from ``at_byte`` on changed to another."""
    position, target = 0, at_byte
    for data in chunks:
        spoiled = bytearray(data)
        if position <= target < position + len(data):
            for index in range(target - position, len(spoiled)):
                if chr(spoiled[index]).isascii() and chr(spoiled[index]).isalnum():
                    spoiled[index] = _other(spoiled[index])
                    target = -1
                    break
            else:
                target = position + len(data)
        position += len(data)
        yield bytes(spoiled)


def _other(byte: int) -> int:
    """Return another character of the same class (digit, lower- or upper-case letter)."""
    for first, count in ((ord("0"), 10), (ord("a"), 26), (ord("A"), 26)):
        if first <= byte < first + count:
            return first + (byte - first + 1) % count
    return byte


class BadGzip:
    """The gzip form of an export file, spoiled by a ``bad_gzip`` fault, in a temporary file.

    Params: ``problem`` (``truncated``: cut after ``after_bytes``, default half; ``bad_crc``: the
    trailer's CRC32 inverted), ``mode`` (``content-encoding`` sends the header, ``raw`` does not),
    ``content_length`` (``sent``: the bytes sent, ``full``: the whole gzip body's, ``none``).
    """

    def __init__(self, path: Path, fault: Fault) -> None:
        """Write the gzip form of ``path`` (as it is, if it already is gzip) and spoil it."""
        self.handle: IO[bytes] = tempfile.TemporaryFile(dir=path.parent)  # noqa: SIM115
        with path.open("rb") as source:
            if source.read(2) == GZIP_MAGIC:
                source.seek(0)
                shutil.copyfileobj(source, self.handle, CHUNK)
            else:
                source.seek(0)
                with gzip.GzipFile(fileobj=self.handle, mode="wb", mtime=0) as packed:
                    shutil.copyfileobj(source, packed, CHUNK)
        self.size = self.handle.tell()
        self.md5 = _handle_md5(self.handle)
        self.params = fault.params
        self.sent = self.size
        if self.params.get("problem", "truncated") == "bad_crc":
            self.handle.seek(self.size - _GZIP_TRAILER)
            crc = self.handle.read(4)
            self.handle.seek(self.size - _GZIP_TRAILER)
            self.handle.write(bytes(b ^ 0xFF for b in crc))
        else:
            self.sent = min(self.size - 1, int(self.params.get("after_bytes", self.size // 2)))

    def headers(self) -> dict[str, str]:
        """Return the headers announcing the spoiled body."""
        headers = {"ETag": f'"{self.md5}"'}
        if self.params.get("mode", "content-encoding") == "content-encoding":
            headers["Content-Encoding"] = "gzip"
        declared = self.params.get("content_length", "sent")
        if declared != "none":
            headers["Content-Length"] = str(self.sent if declared == "sent" else self.size)
        return headers


def _handle_md5(handle: IO[bytes]) -> str:
    """Return the hex MD5 of an open file's whole content."""
    handle.seek(0)
    digest = hashlib.md5(usedforsecurity=False)
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()
