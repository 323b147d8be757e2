"""Standard output as the message writer sees it: how to write it, and what a failure means.

A pipe (or socket) is written in whole lines, never more at once than the reader surely has
room for: what the pipe's size and unread bytes leave, or ``PIPE_BUF`` once ``poll`` says
there is room. Such a write is never cut and never blocks, so the tap can always give up on
a reader that stopped reading, between two whole lines. Anything else (a file, a terminal)
is written as it comes.

A large sync asks Linux for a larger pipe (``enlarge_pipe``): with the default 64 kB, a tap
whose reader is slower than it wakes up and writes for every few dozen kB the reader takes
(300,000 users into a reader that takes 256 kB every 5 ms: 6.9-7.7 CPU s against 5.5-6.0 to
a file, 6.0-6.6 with a 1 MB pipe; under Meltano, eight times fewer writes and polls).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import resource
import select
import stat
import struct
import sys
import termios
from typing import Any

#: The most a write into a pipe that has room takes whole, at once (4096 on Linux).
PIPE_CHUNK = select.PIPE_BUF

#: Linux's ``F_GETPIPE_SZ`` (the fcntl module names it from Python 3.10 on Linux only).
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
#: Linux's ``F_SETPIPE_SZ``; None elsewhere (no pipe is then enlarged).
F_SETPIPE_SZ: int | None = getattr(fcntl, "F_SETPIPE_SZ", None)
#: The pipe size a large sync asks for: Linux lets any process have pipes this large
#: (``/proc/sys/fs/pipe-max-size``, 1 MB by default).
LARGE_PIPE_BYTES = 1 << 20
PAGE = resource.getpagesize()

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


def chunk_end(data: bytearray, start: int, room: int) -> int:
    """Where the next write into a pipe ends: the last whole line within ``room`` bytes.

    A line longer than ``room`` is written in pieces of that size.
    """
    end = min(start + room, len(data))
    if end < len(data):
        cut = data.rfind(b"\n", start, end)
        if cut >= 0:
            end = cut + 1
    return end


def room_in_pipe(fd: int) -> int | None:
    """How many bytes surely fit in the pipe now, without waiting; None when unknown.

    The pipe's size less what waits unread in it, less three pages: its first and last
    pages may be partly used, and a write may take one page more than its bytes.
    """
    try:
        size = fcntl.fcntl(fd, F_GETPIPE_SZ)
        unread: int = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return None
    return max(size - unread - 3 * PAGE, 0)


def enlarge_pipe(fd: int, size: int = LARGE_PIPE_BYTES) -> int | None:
    """Ask for a pipe of ``size`` bytes, never a smaller one than it is; its size, or None.

    The pipe is the same for its reader; data in it stays. A refusal (a system whose limit is
    lower, a user over its pipe quota, not a pipe, not Linux) leaves it as it was.
    """
    try:
        current: int = fcntl.fcntl(fd, F_GETPIPE_SZ)
        if F_SETPIPE_SZ is None or current >= size:
            return current
        enlarged: int = fcntl.fcntl(fd, F_SETPIPE_SZ, size)
    except OSError:
        return None
    return enlarged


def wait_for_room(poller: select.poll) -> bool:
    """Wait a moment for the reader to make room; whether it did (or the pipe broke)."""
    return bool(poller.poll(WAKE_MS))
