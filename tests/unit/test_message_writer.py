"""The tap's message writer: RECORD messages in blocks, every other message written at once."""

from __future__ import annotations

import io
import json
import signal
import sys
from typing import TYPE_CHECKING

import pytest
from singer_sdk.singerlib.messages import RecordMessage, StateMessage

from tap_spaaza_users.sdk_hooks.writer import BLOCK_BYTES, BufferedRecordWriter
from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from collections.abc import Callable

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
