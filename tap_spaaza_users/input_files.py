"""The command line's input files (--config, --state): read as text, checked to be a JSON object."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tap_spaaza_users.errors import SpaazaConfigError, SpaazaError, SpaazaStateError


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
