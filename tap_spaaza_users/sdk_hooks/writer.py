"""Singer messages to standard output, RECORD messages written in blocks, the rest at once.

The SDK's msgspec writer flushes standard output after every message, and with
``PYTHONUNBUFFERED`` (common in containers) standard output has no buffer at all: either way,
one write into the pipe per record, and whoever reads the pipe (Meltano relays every line to
the target) wakes up once per record too. Here RECORD messages are gathered into blocks of
about 64 kB; any other message (SCHEMA, STATE, BATCH, ACTIVATE_VERSION) is written at once,
after every record before it. A STATE therefore never reaches the target before the records
it covers, and nothing the tap has said waits in the buffer while it polls, downloads or
sleeps. A sync that ends in an error writes what is left (``HookedStream._sync_records``).

A stop signal (SIGTERM, SIGINT) never waits on the output for long. Arriving between two
writes, its stop writes the STATE and exits. Arriving while a block is written, it lets the
block finish first, so no line is cut and the STATE follows every record it covers; but only
while the reader takes it: after ``STALL_SECONDS`` without a byte taken, ``STOP_SECONDS`` in
all, or at once on a second signal, the tap gives up between two whole lines and exits
without that STATE (the last one written stands).
"""

from __future__ import annotations

import os
import select
import sys
import time
from typing import TYPE_CHECKING, Any

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.contrib.msgspec import encoder as json_encoder
from singer_sdk.singerlib.messages import SingerMessageType

from tap_spaaza_users.sdk_hooks.output import (
    PIPE_CHUNK,
    OutputFailedError,
    OutputStalledError,
    chunk_end,
    enlarge_pipe,
    failure,
    pipe_fd,
    room_in_pipe,
    wait_for_room,
)

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable

    from singer_sdk.singerlib.messages import Message

#: RECORD messages are written once this many bytes of them are waiting.
BLOCK_BYTES = 1 << 16

#: Once this much has gone into a pipe, the sync is a large one: the pipe is enlarged
#: (``output.enlarge_pipe``). A small sync keeps the pipe its reader made, and with it how far
#: the tap can get ahead of that reader.
ENLARGE_PIPE_AFTER_BYTES = 16 << 20

#: After a stop signal, how long the output may take nothing before the tap gives up on it.
STALL_SECONDS = 2.0

#: After a stop signal, the longest the tap goes on writing at all.
STOP_SECONDS = 5.0


class BufferedRecordWriter(MsgSpecWriter):
    """MsgSpecWriter that writes RECORD messages in blocks, every other message at once.

    A signal handler that wants to write (the tap's stop handler writes its STATE) must not
    do so while a block is half written: its message would land inside a record, or the
    block would be cut short. It calls :meth:`on_stop_signal`, which runs its stop at once,
    or leaves it in ``after_write`` to run as soon as the block is out (or given up).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        """Start with nothing waiting."""
        super().__init__(*args, **kwargs)
        self.pending = bytearray()
        #: RECORD messages (as ``RecordMessage.to_dict`` gives them) the stream appends
        #: here; they are encoded together, before any other message (``encode_records``).
        self.records: list[dict[str, Any]] = []
        self.writing = False
        self.after_write: Callable[[], None] | None = None
        #: The first stop signal received, and when.
        self.stop_signal: int | None = None
        self.stop_asked_at = 0.0
        #: A second stop signal: give up on a stalled output at once.
        self.urgent = False
        #: The output was given up (or failed): nothing more is written.
        self.abandoned = False
        #: Bytes written into a pipe so far, until it is enlarged (then None).
        self.into_pipe: int | None = 0

    def on_stop_signal(self, signum: int, stop: Callable[[], None]) -> None:
        """Run ``stop`` now, or once the block being written is out; never wait here.

        Args:
            signum: The signal.
            stop: What stops the tap (writes the STATE, exits).
        """
        if self.stop_signal is not None:  # a second signal: the first stop is under way
            self.urgent = True
            return
        self.stop_signal = signum
        self.stop_asked_at = time.monotonic()
        if self.writing:
            self.after_write = stop
            return
        stop()

    def flush(self) -> None:
        """Write the RECORD messages waiting, if any."""
        if self.records:
            self.encode_records()
        if self.pending:
            self._write_pending()

    def encode_records(self) -> None:
        """Encode the messages in ``records`` into the block, in one call; write it if full."""
        if self.abandoned:
            self.records.clear()
            return
        self.writing = True  # a stop signal waits: the messages must not be lost or doubled
        try:
            self.pending += json_encoder.encode_lines(self.records)
            self.records.clear()
        finally:
            self.writing = False
        if len(self.pending) >= BLOCK_BYTES or self.after_write is not None:
            self._write_pending()

    def _write_pending(self) -> None:
        """Write the waiting messages whole, then run what a signal handler left to do.

        Raises:
            OutputStalledError: A stop gave up on the output (to the stop writing its STATE).
            OutputFailedError: The output failed (closed by its reader, full).
        """
        if self.abandoned:
            self.pending.clear()
            return
        self.writing = True
        given_up: BaseException | None = None
        try:
            self._write_all()
        except (OutputStalledError, OutputFailedError) as exc:
            given_up = exc
            self.abandoned = True
        finally:
            self.writing = False
            self.pending.clear()
        task, self.after_write = self.after_write, None
        if task is not None:
            task()
        elif given_up is not None:
            raise given_up

    def _write_all(self) -> None:
        """Write ``pending`` to standard output, all of it, and flush."""
        out = sys.stdout.buffer
        fd = pipe_fd(out)
        try:
            if fd is None:
                with memoryview(self.pending) as view:
                    done = 0
                    while done < len(view):
                        done += out.write(view[done:]) or 0  # unbuffered: may take part of it
                out.flush()
            else:
                out.flush()  # anything written past this writer goes first
                self._write_pipe(fd)
                if self.into_pipe is not None:
                    self.into_pipe += len(self.pending)
                    if self.into_pipe >= ENLARGE_PIPE_AFTER_BYTES:
                        enlarge_pipe(fd)
                        self.into_pipe = None
        except OSError as exc:
            raise failure(exc) from None

    def _write_pipe(self, fd: int) -> None:
        """Write ``pending`` into a pipe in whole lines, each once the reader has room."""
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        last_taken = time.monotonic()
        with memoryview(self.pending) as view:
            done = 0
            while done < len(view):
                if self.stop_signal is not None:
                    self._check_stop(last_taken)
                room = room_in_pipe(fd)
                if room is None or room < PIPE_CHUNK:  # a socket, or a pipe nearly full
                    if not wait_for_room(poller):
                        continue
                    room = max(room or 0, PIPE_CHUNK)  # poll: at least PIPE_BUF fits
                done += os.write(fd, view[done : chunk_end(self.pending, done, room)])
                last_taken = time.monotonic()

    def _check_stop(self, last_taken: float) -> None:
        """Give up on the output if a stop was asked and it takes too long.

        Raises:
            OutputStalledError: A second signal came, the output took nothing for
                ``STALL_SECONDS`` (since the signal, at least), or the stop has waited
                ``STOP_SECONDS`` in all.
        """
        now = time.monotonic()
        if (
            self.urgent
            or now - max(last_taken, self.stop_asked_at) > STALL_SECONDS
            or now - self.stop_asked_at > STOP_SECONDS
        ):
            msg = "the output is not being read"
            raise OutputStalledError(msg)

    @override
    def write_message(self, message: Message) -> None:
        """Add a message to the block; write the block unless it is a RECORD (or full).

        Args:
            message: The message to write.
        """
        if self.abandoned:
            return
        if self.records:
            self.encode_records()
        self.pending += self.format_message(message)
        if message.type != SingerMessageType.RECORD or len(self.pending) >= BLOCK_BYTES:
            self._write_pending()
