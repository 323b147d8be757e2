"""No part of the access token reaches a log line, a traceback, the output or a file.

The logging filter is the second line of defence: tested with the exception requests raises
for a header it refuses (its message is the whole ``Bearer <id>:<secret>`` header), in both
of the SDK's log formats. End to end, every byte the tap writes in failing runs is searched.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import pytest
import requests
from singer_sdk.logging import ConsoleFormatter, StructuredFormatter
from support.tap_cli import run_tap

from tap_spaaza_users.logs import scrub as secret_scrub

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

TOKEN_ID = "5f0c2f5e-0000-4a6b-9c1d-2e3f4a5b6c7d"  # noqa: S105 - a test value
SECRET = "sbx_a-secret-that-must-never-show-0123"  # noqa: S105 - a test value


@pytest.fixture
def root_output() -> Iterator[dict[str, io.StringIO]]:
    """Two root handlers, console and JSON format; the scrub filter removed afterwards."""
    root = logging.getLogger()
    outputs = {"console": io.StringIO(), "json": io.StringIO()}
    handlers = []
    for name, formatter in (("console", ConsoleFormatter()), ("json", StructuredFormatter())):
        handler = logging.StreamHandler(outputs[name])
        handler.setFormatter(formatter)
        handlers.append(handler)
        root.addHandler(handler)
    yield outputs
    for handler in handlers:
        root.removeHandler(handler)
    for target in [root, *root.handlers]:
        for f in [f for f in target.filters if isinstance(f, secret_scrub.SecretScrubFilter)]:
            target.removeFilter(f)


def refused_header_error() -> requests.RequestException:
    """What requests raises for an Authorization header ending in a line break."""
    header = f"Bearer {TOKEN_ID}:{SECRET}\r\n"
    try:
        requests.Request(
            "GET", "http://127.0.0.1:9/tasks", headers={"Authorization": header}
        ).prepare()
    except requests.RequestException as exc:
        return exc
    pytest.fail("requests accepted the header")


def raise_from(error: BaseException) -> None:
    """Raise an error caused by ``error``, as a sync failing on it would."""
    msg = "sync failed"
    raise RuntimeError(msg) from error


def test_an_exception_carrying_the_header_is_scrubbed_in_both_log_formats(
    root_output: dict[str, io.StringIO],
) -> None:
    error = refused_header_error()
    assert SECRET in str(error)  # the danger is real
    secret_scrub.install([TOKEN_ID, SECRET])
    logger = logging.getLogger("tap-spaaza-users.users")

    try:
        raise_from(error)
    except RuntimeError:
        logger.exception("Request with header %s failed", f"Bearer {TOKEN_ID}:{SECRET}")
    logger.error("an upper-case echo: %s", TOKEN_ID.upper(), stack_info=True)

    for name, output in root_output.items():
        text = output.getvalue()
        assert "InvalidHeader" in text, name  # the exception is still shown ...
        assert "***" in text
        for part in (TOKEN_ID, SECRET):  # ... without the token
            assert part.lower() not in text.lower(), name


def test_a_tap_in_failing_runs_writes_no_part_of_the_token_anywhere(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    broken = SECRET[:8] + "\n" + SECRET[8:]
    refused = {"api_url": "http://127.0.0.1:9", "max_retries": 0}
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"access_token_secret": SECRET}, ()),  # 401
        ({"access_token_secret": broken}, ()),  # refused before any request
        ({"access_token_secret": f" {SECRET}\r\n", **refused}, ()),  # stripped, nothing listens
        ({"access_token_secret": SECRET}, ("--test",)),
    ]
    runs = []
    for number, (settings, args) in enumerate(cases):
        workdir = tmp_path / str(number)
        (workdir / "tmp").mkdir(parents=True)
        batch = {"encoding": {"format": "jsonl"}, "storage": {"root": (workdir / "b").as_uri()}}
        config = {**fast_config, **settings, "batch_config": batch}
        runs.append(run_tap(workdir, config, *args, env={"TMPDIR": str(workdir / "tmp")}))

    assert [run.returncode for run in runs] == [1, 1, 1, 1]
    assert "holds a space, line break or control character" in runs[1].error
    written = [run.stdout + run.stderr for run in runs]
    written += [path.read_bytes().decode(errors="replace") for path in tmp_path.rglob("*")
                if path.is_file() and not path.name.startswith("config")]  # fmt: skip
    for text in written:
        for part in (small_sandbox.token_id, SECRET, SECRET[:8], SECRET[8:]):
            assert part.lower() not in text.lower()
