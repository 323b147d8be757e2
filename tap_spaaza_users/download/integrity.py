"""Proving a downloaded export whole: its MD5 against storage's ETag, and its gzip stream."""

from __future__ import annotations

import hashlib
import re
import zlib

from tap_spaaza_users.contract import GZIP_MAGIC

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


class BodyCheck:
    """Checks a body as it arrives: gzip (by its magic bytes) is decompressed chunk by chunk.

    The download feeds every chunk as it writes it, so a gzip file's check is done when its
    last byte is, with no second pass over the file; ``restart`` forgets what was fed.
    """

    def __init__(self) -> None:
        """Nothing fed yet."""
        self._head = b""
        self._gzip: _GzipCheck | None = None

    def restart(self) -> None:
        """Forget every byte fed: the body starts over."""
        self._head, self._gzip = b"", None

    def feed(self, chunk: bytes) -> None:
        """Check the next bytes of the body."""
        if len(self._head) < len(GZIP_MAGIC):
            self._head += chunk
            if len(self._head) < len(GZIP_MAGIC):
                return
            chunk, self._head = self._head, self._head[: len(GZIP_MAGIC)]
            if self._head == GZIP_MAGIC:
                self._gzip = _GzipCheck()
        if self._gzip is not None:
            self._gzip.feed(chunk)

    def problem(self, *, declared_gzip: bool) -> str | None:
        """What is wrong with the whole body fed, or None.

        Args:
            declared_gzip: Whether storage declared it gzip (``Content-Encoding``).

        Returns:
            Why the body is not what it claims (declared gzip but not, a broken gzip stream).
        """
        if self._gzip is not None:
            return self._gzip.problem()
        if declared_gzip:
            return "storage declared it gzip (Content-Encoding) but it is not"
        return None


class _GzipCheck:
    """Feeds a gzip file, member after member, to zlib, keeping none of the output."""

    def __init__(self) -> None:
        self.decompressor = zlib.decompressobj(wbits=31)
        self.started = False
        self.members = 0
        self.error: str | None = None

    def feed(self, chunk: bytes) -> bool:
        """Decompress the next bytes; False once the stream is known broken (stop feeding)."""
        if self.error is not None:
            return False
        try:
            self._feed(chunk)
        except zlib.error as exc:
            self.error = self._explain(str(exc))
            return False
        return True

    def _feed(self, chunk: bytes) -> None:
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

    def _explain(self, text: str) -> str:
        if self.members and "incorrect header check" in text:
            return "it has bytes that are not gzip after its gzip stream"
        for needle, problem in _ZLIB_PROBLEMS.items():
            if needle in text:
                return problem
        return f"it is not valid gzip ({text.partition(': ')[2] or text})"

    def problem(self) -> str | None:
        """What is wrong with the stream fed so far, taken as the whole file; or None."""
        if self.error is not None:
            return self.error
        if not self.started:
            return "it is empty"
        if not self.decompressor.eof:
            return "its gzip stream ends early (the file is truncated)"
        return None
