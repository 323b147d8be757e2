"""Run the tap's command line against a sandbox and read what it wrote, for end-to-end tests."""

from __future__ import annotations

import contextlib
import decimal
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

#: The level column of the SDK's console log format, at ERROR.
_ERROR_LEVEL = re.compile(r"\|\s*ERROR\s*\|")

#: Backoff and timeouts turned down through settings, so fault tests stay fast; finished
#: tasks are kept so tests can inspect them (the clean-up tests turn deletion back on).
FAST_SETTINGS: dict[str, Any] = {
    "delete_completed_tasks": False,
    "max_retries": 3,
    "retry_initial_wait_seconds": 0.01,
    "retry_max_wait_seconds": 0.05,
    "request_timeout_seconds": 5,
}


@contextlib.contextmanager
def captured_stdout() -> Iterator[Callable[[], str]]:
    """Redirect standard output (text and binary layers) for an in-process sync.

    Yields:
        A function returning what was written so far, as text.
    """
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)

    def written() -> str:
        stdout.flush()
        return raw.getvalue().decode("utf-8")

    with contextlib.redirect_stdout(stdout):
        yield written


@dataclass
class CliRun:
    """One run of the tap's command line."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The Singer messages on stdout, in order."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def records(self) -> list[dict[str, Any]]:
        """The RECORD messages' records."""
        return [m["record"] for m in self.messages if m["type"] == "RECORD"]

    @property
    def states(self) -> list[dict[str, Any]]:
        """The STATE messages' values."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def error_lines(self) -> list[str]:
        """The stderr lines logged at ERROR."""
        return [line for line in self.stderr.splitlines() if _ERROR_LEVEL.search(line)]

    @property
    def error(self) -> str:
        """The one line that explains a failure: the last ERROR line.

        The SDK may log "An unhandled error occurred while syncing" first; nothing else may
        be logged at ERROR.
        """
        lines = self.error_lines
        assert lines, "no ERROR line"
        assert all("An unhandled error occurred" in line for line in lines[:-1]), lines
        return lines[-1]

    def lines_with(self, text: str) -> list[str]:
        """The stderr lines that contain ``text``."""
        return [line for line in self.stderr.splitlines() if text in line]


def run_tap(
    tmp_path: Path,
    config: dict[str, Any] | str | bytes,
    *args: str,
    state: dict[str, Any] | str | bytes | None = None,
    env: dict[str, str] | None = None,
) -> CliRun:
    """Run ``python -m tap_spaaza_users --config ...`` (plus ``args``) in a subprocess.

    Args:
        tmp_path: Where the config and state files are written.
        config: The tap settings (text or bytes are written as they are).
        *args: More command line arguments.
        state: Input state, if any (text or bytes are written as they are).
        env: Extra environment variables.

    Returns:
        The exit status and both output streams.
    """
    config_path = _write(tmp_path / "config.json", config)
    argv = [sys.executable, "-m", "tap_spaaza_users", "--config", str(config_path), *args]
    if state is not None:
        argv += ["--state", str(_write(tmp_path / "state.json", state))]
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_SPAAZA_USERS_")}
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**run_env, **(env or {})},
        timeout=120,
        check=False,
    )
    return CliRun(result.returncode, result.stdout, result.stderr)


def _write(path: Path, content: dict[str, Any] | str | bytes) -> Path:
    """Write a JSON object as JSON, or text and bytes as they are; return the path."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@dataclass
class SyncOutput:
    """The Singer messages of one sync, sorted by type."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        """The RECORD messages' records."""
        return [m["record"] for m in self.messages if m["type"] == "RECORD"]

    @property
    def schemas(self) -> list[dict[str, Any]]:
        """The SCHEMA messages."""
        return [m for m in self.messages if m["type"] == "SCHEMA"]

    @property
    def states(self) -> list[dict[str, Any]]:
        """The STATE messages' values."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, Any]:
        """The last STATE value (what an orchestrator would keep)."""
        return self.states[-1]

    @property
    def bookmark(self) -> str | None:
        """The users bookmark of the final state."""
        return cast(
            "str | None", self.final_state["bookmarks"]["users"].get("replication_key_value")
        )

    @property
    def ids(self) -> set[int]:
        """The ids of the emitted users."""
        return {record["id"] for record in self.records}


def parse_messages(text: str) -> list[dict[str, Any]]:
    """Parse Singer messages, numbers with a fraction as Decimal (to compare every digit).

    Args:
        text: The tap's standard output.

    Returns:
        The messages.
    """
    return [json.loads(line, parse_float=decimal.Decimal) for line in text.splitlines() if line]


# A tap process read message by message, and stopped by a signal (the kill tests).

DEADLINE_SECONDS = 30


class TapProcess:
    """One run of the tap command, read message by message."""

    def __init__(
        self, tmp_path: Path, config: dict[str, Any], state: dict[str, Any] | None
    ) -> None:
        """Start the command with ``--config`` (and ``--state`` when given)."""
        run = len(list(tmp_path.glob("config-*.json")))
        config_path = tmp_path / f"config-{run}.json"
        config_path.write_text(json.dumps(config))
        argv = [sys.executable, "-m", "tap_spaaza_users", "--config", str(config_path)]
        if state is not None:
            state_path = tmp_path / f"state-{run}.json"
            state_path.write_text(json.dumps(state))
            argv += ["--state", str(state_path)]
        self.stderr_path = tmp_path / f"stderr-{run}.log"
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr)
        self.messages: list[dict[str, Any]] = []

    def read_until(self, done: Callable[[list[dict[str, Any]]], bool]) -> None:
        """Read messages until ``done`` holds (fails if the output ends first)."""
        assert self.process.stdout is not None
        while not done(self.messages):
            line = self.process.stdout.readline()
            assert line, f"the tap ended first: {self.stderr_path.read_text()[-2000:]}"
            self.messages.append(json.loads(line))

    def kill(self, signum: int = signal.SIGKILL, *, keep_unread: bool = False) -> None:
        """Stop the process; with ``keep_unread``, what it had already written counts too."""
        self.process.send_signal(signum)
        assert self.process.stdout is not None
        rest = self.process.stdout.read()
        self.process.stdout.close()
        self.process.wait(DEADLINE_SECONDS)
        if keep_unread:
            self.messages += [json.loads(line) for line in rest.splitlines() if line.strip()]

    def finish(self) -> None:
        """Read everything up to the end; the run must succeed."""
        assert self.process.stdout is not None
        rest = self.process.stdout.read()
        self.process.stdout.close()
        self.messages += [json.loads(line) for line in rest.splitlines() if line.strip()]
        assert self.process.wait(DEADLINE_SECONDS) == 0, self.stderr_path.read_text()[-2000:]

    @property
    def ids(self) -> set[int]:
        """The ids of the users received."""
        return {m["record"]["id"] for m in self.messages if m["type"] == "RECORD"}

    @property
    def last_state(self) -> dict[str, Any] | None:
        """The last STATE received, if any."""
        return last_state(self.messages)


def last_state(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The value of the last STATE among messages, if any."""
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return states[-1] if states else None


def records(messages: list[dict[str, Any]]) -> int:
    """How many RECORD messages were received."""
    return sum(1 for m in messages if m["type"] == "RECORD")


def has_in_flight_state(messages: list[dict[str, Any]]) -> bool:
    """Whether a STATE naming the in-flight task was received."""
    return any(
        m["type"] == "STATE" and "in_flight_task" in m["value"]["bookmarks"]["users"]
        for m in messages
    )


def delivered_tasks(value: dict[str, Any] | None) -> list[int]:
    """The tasks a STATE value names as delivered (``delivered_tasks``), oldest first."""
    if value is None:
        return []
    return list(value["bookmarks"]["users"].get("delivered_tasks", []))


def assert_left_are_delivered(
    sandbox: Sandbox, final: dict[str, Any], before: dict[str, Any] | None = None
) -> set[int]:
    """Assert the sandbox holds exactly the tasks a sync delivered, each DONE, and no other.

    A sync keeps the tasks it delivered for the next sync to delete (the target may still
    fail to load their rows): they are the ones its final STATE names as delivered that its
    input state did not.

    Args:
        sandbox: The sandbox.
        final: The sync's final STATE value.
        before: The sync's input state, if any.

    Returns:
        The tasks left.
    """
    left = set(delivered_tasks(final)) - set(delivered_tasks(before))
    assert left, "the sync named no task delivered"
    assert set(sandbox.tasks) == left
    assert {task.code for task in sandbox.tasks.values()} == {"DONE"}
    return left


def task_creations(sandbox: Sandbox) -> int:
    """How many tasks the sandbox was asked to create."""
    return sum(1 for r in sandbox.requests if r.method == "POST" and r.path == "/tasks")


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds (fails after the deadline)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)
