"""Standard output as the message writer sees it: how to write it, and what a failure means.

A pipe (or socket) is written in whole lines of at most ``PIPE_BUF`` bytes, each once the
reader has room for it (``poll``): such a write is never cut and never blocks, so the tap
can always give up on a reader that stopped reading, between two whole lines. Anything else
(a file, a terminal) is written as it comes.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import select
import stat
import sys
from typing import Any

#: The most a write into a pipe that has room takes whole, at once (4096 on Linux).
PIPE_CHUNK = select.PIPE_BUF

#: How often, in milliseconds, a wait for a reader with no room looks whether to give up.
WAKE_MS = 100


class OutputFailedError(BaseException):
    """Standard output cannot take the tap's messages (closed by its reader, or full).

    A BaseException: the SDK would call it "an unhandled error while syncing", but the
    tap did nothing wrong; the command line's edge logs its one line and exits with 1.
    """


class OutputStalledError(Exception):
    """A stop was asked and the output took nothing for too long: the tap gives up on it."""


def failure(error: OSError) -> OutputFailedError:
    """The one-line error for a write to standard output that failed.

    Standard output is pointed at the null device, so that nothing the interpreter still
    holds (its own buffer, flushed at exit) fails a second time with a traceback.

    Args:
        error: The write's error.

    Returns:
        The error naming the cause.
    """
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    if isinstance(error, BrokenPipeError) or error.errno in {errno.EPIPE, errno.ECONNRESET}:
        cause = (
            "the reader of the tap's standard output (the target, or the command it is piped "
            "into) closed it before the sync ended; this is not a tap error: see why the "
            "reader stopped, then run the sync again"
        )
    elif error.errno in {errno.ENOSPC, errno.EDQUOT}:
        cause = (
            "no space is left on the device standard output goes to; free space there, or "
            "send the output elsewhere, then run the sync again"
        )
    elif error.errno == errno.EBADF:
        cause = closed_stdout_cause()
    else:
        cause = f"{error.strerror or error}; check where standard output goes"
    return OutputFailedError(f"The tap stopped writing its messages: {cause}.")


def closed_stdout_cause() -> str:
    """Why a tap whose standard output is closed cannot run, and what to do."""
    return (
        "standard output is closed, and the tap writes its Singer messages there; run it "
        "with standard output going to a target, a pipe or a file"
    )


def stdout_is_closed() -> bool:
    """Whether the process was started with its standard output closed (``>&-``)."""
    if sys.stdout is None:
        return True
    try:
        os.fstat(1)
    except OSError:
        return True
    return False


def pipe_fd(out: Any) -> int | None:  # noqa: ANN401 - whatever sys.stdout.buffer is
    """The file descriptor of ``out`` if it is a pipe or a socket, else None."""
    try:
        fd = out.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else None


def chunk_end(data: bytearray, start: int) -> int:
    """Where the next write into a pipe ends: the last whole line within ``PIPE_CHUNK``.

    A line longer than ``PIPE_CHUNK`` is written in pieces of that size.
    """
    end = min(start + PIPE_CHUNK, len(data))
    if end < len(data):
        cut = data.rfind(b"\n", start, end)
        if cut >= 0:
            end = cut + 1
    return end


def wait_for_room(poller: select.poll) -> bool:
    """Wait a moment for the reader to make room; whether it did (or the pipe broke)."""
    return bool(poller.poll(WAKE_MS))
