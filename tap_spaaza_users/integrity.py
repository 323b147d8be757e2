"""Proving a downloaded export whole: its MD5 against storage's ETag, and its gzip stream."""

from __future__ import annotations

import hashlib
import re
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
_READ_SIZE = 1024 * 1024
_MAX_OUTPUT = 4 * 1024 * 1024
#: A plain (not multipart) S3 object's ETag: the hex MD5 of its bytes, in quotes.
_MD5_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
_ZLIB_PROBLEMS = {
    "incorrect data check": "its gzip checksum (CRC-32) does not match its content",
    "incorrect length check": "its gzip length check does not match its content",
    "incorrect header check": "it is not a gzip stream",
}


def md5_of_etag(etag: str | None) -> str | None:
    """The MD5 an ETag states, when it is a plain S3 object's (32 hex digits), lower case.

    Multipart uploads (``"<hex>-<parts>"``), weak ETags and other storages' tags state none.

    Args:
        etag: The ETag header, if any.

    Returns:
        The hex MD5, or None.
    """
    match = _MD5_ETAG.match(etag or "")
    return match.group(1).lower() if match else None


def new_md5() -> hashlib._Hash:
    """A fresh MD5 (used to check integrity, not for security)."""
    return hashlib.md5(usedforsecurity=False)


def gzip_problem(stream: BinaryIO) -> str | None:
    """Decompress a gzip stream to nowhere; say what is wrong with it, or None if it is whole.

    Every member is checked (CRC-32 and length); zero padding after the last is allowed, as
    Python's gzip module allows it. Memory stays bounded whatever the compression ratio.

    Args:
        stream: The file, from its first byte.

    Returns:
        What is wrong (truncated, a bad checksum, not gzip), or None.
    """
    check = _GzipCheck()
    try:
        while chunk := stream.read(_READ_SIZE):
            check.feed(chunk)
    except zlib.error as exc:
        text = str(exc)
        if check.members and "incorrect header check" in text:
            return "it has bytes that are not gzip after its gzip stream"
        for needle, problem in _ZLIB_PROBLEMS.items():
            if needle in text:
                return problem
        return f"it is not valid gzip ({text.partition(': ')[2] or text})"
    if not check.started:
        return "it is empty"
    if not check.decompressor.eof:
        return "its gzip stream ends early (the file is truncated)"
    return None


class _GzipCheck:
    """Feeds a gzip file, member after member, to zlib, keeping none of the output."""

    def __init__(self) -> None:
        self.decompressor = zlib.decompressobj(wbits=31)
        self.started = False
        self.members = 0

    def feed(self, chunk: bytes) -> None:
        while chunk:
            if self.decompressor.eof:
                self.members += 1
                chunk = chunk.lstrip(b"\x00")  # padding, or the next member
                if not chunk:
                    return
                self.decompressor = zlib.decompressobj(wbits=31)
            self.started = True
            self.decompressor.decompress(chunk, _MAX_OUTPUT)
            while self.decompressor.unconsumed_tail:
                self.decompressor.decompress(self.decompressor.unconsumed_tail, _MAX_OUTPUT)
            chunk = self.decompressor.unused_data
