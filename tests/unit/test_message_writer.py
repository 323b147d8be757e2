"""The tap's message writer: RECORD messages in blocks, every other message written at once."""

from __future__ import annotations

import fcntl
import io
import json
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

import pytest
from singer_sdk.singerlib.messages import RecordMessage, StateMessage

from tap_spaaza_users.sdk_hooks import output, writer
from tap_spaaza_users.sdk_hooks.writer import BLOCK_BYTES, BufferedRecordWriter
from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox


class TrickleOut(io.RawIOBase):
    """An unbuffered standard output that takes at most 1000 bytes per write, and counts writes."""

    def __init__(self) -> None:
        """Nothing written yet."""
        self.data = bytearray()
        self.writes = 0

    def writable(self) -> bool:
        """It is an output."""
        return True

    def write(self, data: object) -> int:
        """Take the first 1000 bytes at most."""
        chunk = bytes(memoryview(data))[:1000]  # type: ignore[arg-type]
        self.data += chunk
        self.writes += 1
        return len(chunk)


class Stdout:
    """What the writer needs of sys.stdout: ``buffer`` and ``flush``."""

    def __init__(self) -> None:
        """An empty output."""
        self.buffer = TrickleOut()

    def flush(self) -> None:
        """Nothing to flush above the raw layer."""


def lines(out: Stdout) -> list[dict[str, object]]:
    """The messages written so far."""
    return [json.loads(line) for line in out.buffer.data.decode().splitlines()]


def test_records_wait_for_the_next_state_and_come_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    writer = BufferedRecordWriter()

    for user_id in range(3):
        writer.write_message(RecordMessage(stream="users", record={"id": user_id}))
    assert out.buffer.data == b""

    writer.write_message(StateMessage(value={"bookmarks": {"users": {"n": 3}}}))
    assert [message["type"] for message in lines(out)] == ["RECORD"] * 3 + ["STATE"]
    assert [message["record"]["id"] for message in lines(out)[:3]] == [0, 1, 2]  # type: ignore[index]


def test_a_full_block_is_written_whole_even_by_an_unbuffered_stdout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    writer = BufferedRecordWriter()
    record = {"id": 1, "text": "x" * 1000}
    count = 0

    while not out.buffer.data:
        writer.write_message(RecordMessage(stream="users", record=record))
        count += 1

    assert len(out.buffer.data) >= BLOCK_BYTES
    assert len(lines(out)) == count  # every record so far, whole, in many partial writes
    assert out.buffer.writes > BLOCK_BYTES // 1000
    writer.write_message(RecordMessage(stream="users", record=record))
    assert len(lines(out)) == count
    writer.flush()
    assert len(lines(out)) == count + 1


class InterruptedOut(TrickleOut):
    """A trickling output on whose second write a signal arrives (its handler runs)."""

    def __init__(self, handler: Callable[[], None]) -> None:
        """Nothing written yet; ``handler`` is what the signal runs."""
        super().__init__()
        self.handler = handler

    def write(self, data: object) -> int:
        """Take part of it; on the second call, run the handler first, as a signal would."""
        if self.writes == 1:
            self.handler()
        return super().write(data)


def test_a_sigterm_mid_block_writes_the_state_after_the_whole_block(
    monkeypatch: pytest.MonkeyPatch, small_sandbox: Sandbox
) -> None:
    tap = TapSpaazaUsers(config=small_sandbox.tap_config(), parse_env_config=False)
    out = Stdout()
    out.buffer = InterruptedOut(lambda: tap._handle_termination(signal.SIGTERM, None))
    monkeypatch.setattr(sys, "stdout", out)
    record = RecordMessage(stream="users", record={"id": 1, "username": "x" * 500})

    def write_records() -> None:
        for _ in range(BLOCK_BYTES // 500 + 10):
            tap.message_writer.write_message(record)

    with pytest.raises(SystemExit) as stopped:
        write_records()

    assert stopped.value.code == 143
    messages = lines(out)  # every line whole: the state did not land inside a record
    assert messages[-1]["type"] == "STATE"
    assert {m["type"] for m in messages[:-1]} == {"RECORD"}
    assert len(messages) - 1 >= BLOCK_BYTES // 600  # the whole block came out first


linux_only = pytest.mark.skipif(
    output.F_SETPIPE_SZ is None, reason="pipe sizes are set through Linux's F_SETPIPE_SZ"
)


@linux_only
def test_a_pipe_is_enlarged_never_shrunk_and_anything_else_is_left_alone(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        assert output.enlarge_pipe(write_end, 4 * output.PAGE) == 16 * output.PAGE  # 64 kB
        assert output.enlarge_pipe(write_end) == output.LARGE_PIPE_BYTES
        assert output.enlarge_pipe(read_end, 16 * output.PAGE) == output.LARGE_PIPE_BYTES
    finally:
        os.close(read_end)
        os.close(write_end)
    with (tmp_path / "file").open("wb") as file:
        assert output.enlarge_pipe(file.fileno()) is None


class PipeOut:
    """A standard output that is the write end of a real pipe, drained by a thread."""

    def __init__(self) -> None:
        """Open the pipe and start draining it."""
        self.read_end, write_end = os.pipe()
        self.buffer = io.FileIO(write_end, "wb")
        self.data = bytearray()
        self.thread = threading.Thread(target=self._drain)
        self.thread.start()

    def _drain(self) -> None:
        while chunk := os.read(self.read_end, 1 << 16):
            self.data += chunk

    def flush(self) -> None:
        """Nothing to flush above the raw layer."""

    def pipe_size(self) -> int:
        """The pipe's size now."""
        return int(fcntl.fcntl(self.read_end, output.F_GETPIPE_SZ))

    def close(self) -> None:
        """Close the write end, and the read end once all was read."""
        self.buffer.close()
        self.thread.join()
        os.close(self.read_end)


@linux_only
def test_a_pipe_is_enlarged_once_a_large_sync_has_gone_through_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(writer, "ENLARGE_PIPE_AFTER_BYTES", 8 * BLOCK_BYTES)
    out = PipeOut()
    monkeypatch.setattr(sys, "stdout", out)
    record = {"id": 1, "text": "x" * 1000}
    sizes = []
    try:
        tap_writer = BufferedRecordWriter()
        for _ in range(16 * BLOCK_BYTES // 1000):
            tap_writer.write_message(RecordMessage(stream="users", record=record))
            sizes.append(out.pipe_size())
        tap_writer.write_message(StateMessage(value={"bookmarks": {}}))
    finally:
        out.close()

    small = 16 * output.PAGE
    assert sizes[: 7 * BLOCK_BYTES // 1000] == [small] * (7 * BLOCK_BYTES // 1000)
    assert sizes[-1] == output.LARGE_PIPE_BYTES
    messages = [json.loads(line) for line in out.data.decode().splitlines()]
    assert len(messages) == len(sizes) + 1  # every line whole, in order, none lost
    assert messages[-1]["type"] == "STATE"
