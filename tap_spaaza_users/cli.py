"""The command line's edge: its input files (--config, --state) and the connection check's log.

The input files are read as text and checked to be one JSON object, naming the file and the
fix otherwise; on a terminal, the connection check logs as Meltano prints its own lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from singer_sdk.logging import StructuredFormatter

from tap_spaaza_users.errors import SpaazaConfigError, SpaazaError, SpaazaStateError

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

# The input files


@dataclass(frozen=True)
class InputFile:
    """A JSON file the command line reads: what the messages call it, and how to mend it."""

    label: str
    hint: str
    error: type[SpaazaError]


CONFIG_FILE = InputFile(
    "Config file",
    'write the settings as one JSON object, {"chain_id": 1234, ...}',
    SpaazaConfigError,
)
STATE_FILE = InputFile(
    "State file",
    "give the JSON object a previous run wrote as its last STATE message, or leave --state "
    "out to start from start_date",
    SpaazaStateError,
)


def read_input_file(source: str | IO[str], kind: InputFile) -> str:
    """Read a file given on the command line (a path, or a file click opened) as text.

    Args:
        source: The path, or the open file.
        kind: Which file it is.

    Returns:
        Its text.

    Raises:
        SpaazaError: Naming the file when it is missing, unreadable or not UTF-8 text.
    """
    name = source if isinstance(source, str) else getattr(source, "name", "-")
    try:
        if isinstance(source, str):
            return Path(source).read_text(encoding="utf-8")
        return source.read()
    except FileNotFoundError:
        msg = f"{kind.label} {name} was not found"
    except UnicodeDecodeError:
        msg = f"{kind.label} {name} is not text (UTF-8 JSON): {kind.hint}"
    except OSError as exc:
        msg = f"{kind.label} {name} cannot be read ({exc.strerror or type(exc).__name__})"
    raise kind.error(msg)


def check_json_object(text: str, kind: InputFile, name: str) -> None:
    """Check that a file's text is one JSON object, naming what is wrong with it otherwise.

    Args:
        text: The file's text.
        kind: Which file it is.
        name: Its path, for the message.

    Raises:
        SpaazaError: For a file that is empty, not JSON or not an object.
    """
    where = f"{kind.label} {name}"
    if not text.strip():
        msg = f"{where} is empty: {kind.hint}"
        raise kind.error(msg)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{where} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}): {kind.hint}"
        raise kind.error(msg) from None
    if not isinstance(value, dict):
        msg = f"{where} must hold a JSON object, not a {_json_kind(value)}: {kind.hint}"
        raise kind.error(msg)


def _json_kind(value: object) -> str:
    """A JSON value's kind, as JSON names it."""
    kinds = {list: "list", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


# The connection check's log lines on a terminal


class MeltanoStyleFormatter(logging.Formatter):
    """A log line as Meltano prints its own: ``<UTC time> [level    ] <plugin> <message>``."""

    def __init__(self, plugin: str) -> None:
        """Name the plugin the lines come from."""
        super().__init__()
        self.plugin = plugin

    @override
    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
        stamp = when.isoformat(timespec="microseconds").replace("+00:00", "Z")
        return f"{stamp} [{record.levelname.lower():<9}] {self.plugin} {record.getMessage()}"


def readable_check_logs(plugin: str) -> None:
    """On a terminal, log the connection check like Meltano's own lines instead of JSON.

    Meltano asks SDK taps for JSON logs and renders them when it reads them through a pipe
    (``meltano run``, ``meltano invoke``), but ``meltano test`` hands the terminal itself to
    a test command: its lines would show as raw JSON. There, the check logs its verdict the
    way Meltano logs, without the SDK's settings-parsing and METRIC chatter.

    Args:
        plugin: The name shown on each line.
    """
    if not sys.stderr.isatty():
        return
    logging.getLogger("singer_sdk.metrics").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, StructuredFormatter):
            handler.setFormatter(MeltanoStyleFormatter(plugin))
    logging.getLogger("singer_sdk.configuration").setLevel(logging.WARNING)
