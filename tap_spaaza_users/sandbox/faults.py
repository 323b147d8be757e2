"""Fault injection: one-shot (or N-shot) failures scoped by kind, server, method and path."""

from __future__ import annotations

import csv
import fnmatch
import gzip
import io
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tap_spaaza_users.contract import REPLICATION_KEY, parse_utc

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

#: fault kind -> where it fires ("api", "storage" or "task")
FAULT_KINDS: dict[str, str] = {
    "status": "api",
    "answer_lost": "api",
    "insecure_download_url": "api",
    "ignore_offset": "api",
    "storage_status": "storage",
    "range_forbidden": "storage",
    "redirect": "storage",
    "ignore_range": "storage",
    "ignore_if_range": "storage",
    "object_replaced": "storage",
    "file_expired": "storage",
    "drop_connection": "storage",
    "short_body": "storage",
    "url_expired": "storage",
    "slow_download": "storage",
    "early_close": "storage",
    "bad_gzip": "storage",
    "corrupt_body": "storage",
    "task_error": "task",
    "task_stuck": "task",
    "gzip": "task",
    "malformed_rows": "task",
    "duplicate_rows": "task",
    "stray_quote": "task",
    "invalid_utf8": "task",
    "local_time": "task",
    "short_export": "task",
    "task_clock_lag": "task",
}
#: Task faults that change the export file once it is written (see ``damage_export``).
FILE_FAULTS = ("stray_quote", "invalid_utf8", "local_time")


@dataclass
class Fault:
    """One armed fault."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    times: int = 1
    method: str | None = None
    path: str | None = None

    def applies(self, method: str | None, path: str | None) -> bool:
        """Return whether the fault's scope covers a request (tasks have no method/path)."""
        if self.method and method and self.method.upper() != method.upper():
            return False
        return not (self.path and path and not fnmatch.fnmatchcase(path, self.path))

    def describe(self) -> dict[str, Any]:
        """Return the fault as JSON for the control API."""
        return {
            "kind": self.kind,
            "params": self.params,
            "times": self.times,
            "method": self.method,
            "path": self.path,
        }


def make_fault(kind: str, params: dict[str, Any]) -> Fault:
    """Build a fault from ``inject`` keywords (``times``, ``method``, ``path`` are scope).

    Raises:
        ValueError: unknown kind or bad ``times``.
    """
    if kind not in FAULT_KINDS:
        msg = f"unknown fault kind {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}"
        raise ValueError(msg)
    rest = dict(params)
    times = int(rest.pop("times", 1))
    if times < 1:
        msg = "times must be at least 1"
        raise ValueError(msg)
    method, path = rest.pop("method", None), rest.pop("path", None)
    _check_names(kind, rest)
    _check_params(kind, rest)
    return Fault(kind, rest, times, method, path)


#: fault kind -> its parameters, besides the scope every fault takes (``times``, ``method``,
#: ``path``); a name not listed is refused, so a typo never arms a fault that does nothing
FAULT_PARAMS: dict[str, tuple[str, ...]] = {
    "status": ("status", "retry_after", "body"),
    "answer_lost": ("then", "hold_seconds", "status", "retry_after", "body"),
    "insecure_download_url": ("host",),
    "ignore_offset": (),
    "storage_status": ("status", "retry_after", "headers"),
    "range_forbidden": (),
    "redirect": ("status", "location"),
    "ignore_range": (),
    "ignore_if_range": (),
    "object_replaced": (),
    "file_expired": (),
    "drop_connection": ("after_bytes",),
    "short_body": ("missing_bytes",),
    "url_expired": (),
    "slow_download": ("bytes_per_second",),
    "early_close": ("after_bytes", "framing"),
    "bad_gzip": ("problem", "mode", "content_length", "after_bytes"),
    "corrupt_body": ("at_byte",),
    "task_error": ("logs",),
    "task_stuck": ("seconds", "code"),
    "gzip": ("mode",),
    "malformed_rows": ("rows", "problem", "column"),
    "duplicate_rows": ("count", "newer_by_seconds"),
    "stray_quote": ("rows", "column"),
    "invalid_utf8": ("rows",),
    "local_time": ("hours",),
    "short_export": ("rows",),
    "task_clock_lag": ("seconds",),
}
_GZIP_MODES = frozenset({"content-encoding", "raw"})
#: fault kind -> (parameter, allowed values) checks made when the fault is armed
_CHOICES: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {
    "gzip": (("mode", _GZIP_MODES),),
    "malformed_rows": (("problem", frozenset({"field_count", "bad_value"})),),
    "answer_lost": (("then", frozenset({"error", "answer", "drop"})),),
    "early_close": (("framing", frozenset({"close", "chunked"})),),
    "bad_gzip": (
        ("problem", frozenset({"truncated", "bad_crc"})),
        ("mode", _GZIP_MODES),
        ("content_length", frozenset({"sent", "full", "none"})),
    ),
}
_STATUS_RANGE = range(100, 600)
#: the statuses a ``redirect`` fault may answer
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def _check_names(kind: str, params: dict[str, Any]) -> None:
    """Refuse a parameter the fault does not have (a typo would arm a fault doing nothing).

    Raises:
        ValueError: naming the unknown parameters and the fault's own.
    """
    unknown = sorted(set(params) - set(FAULT_PARAMS[kind]))
    if unknown:
        allowed = ", ".join([*FAULT_PARAMS[kind], "times", "method", "path"])
        msg = f"fault {kind} has no parameter {', '.join(unknown)}; its parameters: {allowed}"
        raise ValueError(msg)


def _check_params(kind: str, params: dict[str, Any]) -> None:
    """Refuse parameters a fault cannot honour.

    Raises:
        ValueError: a parameter has no such value.
    """
    statused = {"status", "storage_status", "answer_lost"}
    if kind in statused and int(params.get("status", 503)) not in _STATUS_RANGE:
        msg = "status must be an HTTP status code"
        raise ValueError(msg)
    for name, allowed in _CHOICES.get(kind, ()):
        if name in params and params[name] not in allowed:
            msg = f"{kind} {name} must be one of {sorted(allowed)}"
            raise ValueError(msg)
    if kind in FILE_FAULTS and not all(int(row) >= 1 for row in params.get("rows", [1])):
        msg = f"{kind} rows are data rows, counted from 1"
        raise ValueError(msg)
    if "hours" in params:
        float(params["hours"])  # a number (negative: local time behind UTC)
    for name in ("hold_seconds", "after_bytes", "at_byte", "count", "newer_by_seconds"):
        if name in params and float(params[name]) < 0:
            msg = f"{kind} {name} must be a non-negative number"
            raise ValueError(msg)
    check = _KIND_CHECKS.get(kind)
    if check is not None:
        check(params)


def _check_rate(params: dict[str, Any]) -> None:
    """Refuse a ``slow_download`` rate that is not above 0."""
    if not float(params.get("bytes_per_second", 1024)) > 0:
        msg = "slow_download bytes_per_second must be above 0"
        raise ValueError(msg)


def _check_short_rows(params: dict[str, Any]) -> None:
    """Refuse a negative ``short_export`` row count."""
    if int(params.get("rows", 0)) < 0:
        msg = "short_export rows must be a non-negative number"
        raise ValueError(msg)


def _check_redirect(params: dict[str, Any]) -> None:
    """Refuse a ``redirect`` status that is not one, or a ``location`` HTTP cannot carry.

    Raises:
        ValueError: naming the parameter.
    """
    if int(params.get("status", 302)) not in REDIRECT_STATUSES:
        msg = f"redirect status must be one of {sorted(REDIRECT_STATUSES)}"
        raise ValueError(msg)
    try:
        urlsplit(str(params.get("location") or "")).port  # noqa: B018 - reading it checks it
    except ValueError:
        msg = "redirect location must be a URL with a valid host and port"
        raise ValueError(msg) from None


#: fault kind -> the check of its own parameters (see ``_check_params``)
_KIND_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "slow_download": _check_rate,
    "short_export": _check_short_rows,
    "redirect": _check_redirect,
}


class FaultStore:
    """The armed faults, consumed as they fire."""

    def __init__(self) -> None:
        """Start with no fault armed."""
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """Arm a fault."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def armed(self) -> list[Fault]:
        """Return the faults still armed."""
        with self._lock:
            return list(self._faults)

    def take(
        self, kinds: tuple[str, ...], method: str | None = None, path: str | None = None
    ) -> Fault | None:
        """Consume one shot of the first armed fault of ``kinds`` covering the request."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.applies(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


# Damaged export files ---------------------------------------------------------------------


def damage_export(path: Path, faults: list[Fault]) -> None:
    """Change a written export file as the armed file faults say (gzip kept if it was).

    - ``stray_quote`` (``rows``, default [1]; ``column``, default first_name): the cell
      starts with a ``"`` that is never closed.
    - ``invalid_utf8`` (``rows``): the row's first line holds the bytes FF FE (not UTF-8).
    - ``local_time`` (``hours``, default 2): every ``created_date`` is written as local
      time ``hours`` ahead of UTC (behind when negative), without a zone; the window filter
      still works in UTC, as Spaaza's does.
    """
    if not faults:
        return
    data = path.read_bytes()
    gzipped = data[:2] == b"\x1f\x8b"
    text = (gzip.decompress(data) if gzipped else data).decode("utf-8")
    bad_lines: set[int] = set()
    for fault in faults:
        rows = {int(row) for row in fault.params.get("rows", [1])}
        if fault.kind == "local_time":
            text = _shift_created(text, float(fault.params.get("hours", 2)))
        elif fault.kind == "stray_quote":
            text = _open_quote(text, rows, str(fault.params.get("column", "first_name")))
        else:
            bad_lines |= {_row_lines(text)[row - 1][0] for row in rows}
    lines = [line.encode("utf-8") for line in io.StringIO(text, newline="").readlines()]
    for index in bad_lines:
        comma = lines[index].find(b",") + 1
        lines[index] = lines[index][:comma] + b"\xff\xfe" + lines[index][comma:]
    damaged = b"".join(lines)
    path.write_bytes(gzip.compress(damaged, mtime=0) if gzipped else damaged)


def replace_export(path: Path) -> None:
    """Replace a written export file with one of the same users, rows in reverse order.

    Same length, other bytes (and so another MD5 and ``ETag``); gzip kept if it was. The new
    file takes the old one's place at once: a body already streaming keeps the old bytes.
    """
    data = path.read_bytes()
    gzipped = data[:2] == b"\x1f\x8b"
    text = (gzip.decompress(data) if gzipped else data).decode("utf-8")
    lines = io.StringIO(text, newline="").readlines()
    spans = _row_lines(text)
    if len(spans) < 2:  # noqa: PLR2004 - one row or none: no other order
        return
    rows = ["".join(lines[first:end]) for first, end in spans]
    ending = _line_ending(text)
    unended = not rows[-1].endswith("\n")
    if unended:
        rows[-1] += ending
    replaced = "".join(lines[: spans[0][0]]) + "".join(reversed(rows))
    if unended:
        replaced = replaced.removesuffix(ending)
    body = replaced.encode("utf-8")
    fresh = path.with_name(path.name + ".replacing")
    fresh.write_bytes(gzip.compress(body, mtime=0) if gzipped else body)
    fresh.replace(path)


def _row_lines(text: str) -> list[tuple[int, int]]:
    """Each data row's physical lines, as (first, end) indexes into the file's lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    spans, first = [], reader.line_num
    for _ in reader:
        spans.append((first, reader.line_num))
        first = reader.line_num
    return spans


def _rendered(cells: list[str], ending: str) -> str:
    """A CSV line as the sandbox writes it (fields quoted when they must be)."""
    special = (",", '"', "\r", "\n", "\0")
    quoted = (
        '"' + cell.replace('"', '""') + '"' if any(ch in cell for ch in special) else cell
        for cell in cells
    )
    return ",".join(quoted) + ending


def _line_ending(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _open_quote(text: str, rows: set[int], column: str) -> str:
    """The file with an unclosed quote opening ``column`` in each of ``rows``."""
    lines = io.StringIO(text, newline="").readlines()
    header = next(csv.reader([lines[0]]))
    position, ending = header.index(column), _line_ending(text)
    for row in sorted(rows, reverse=True):
        first, end = _row_lines(text)[row - 1]
        cells = next(csv.reader(["".join(lines[first:end])]))
        line = _rendered(cells[:position], ",") if position else ""
        line += '"' + cells[position].replace('"', "") + ","
        line += _rendered(cells[position + 1 :], ending)
        lines[first:end] = [line]
    return "".join(lines)


def _shift_created(text: str, hours: float) -> str:
    """The file with every ``created_date`` moved ``hours`` on and its zone dropped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header, ending = next(reader), _line_ending(text)
    position = header.index(REPLICATION_KEY)
    out = [text[: text.index(ending)] + ending]
    for cells in reader:
        if cells[position]:
            moment = parse_utc(cells[position]) + timedelta(hours=hours)
            cells[position] = moment.strftime("%Y-%m-%d %H:%M:%S")
        out.append(_rendered(cells, ending))
    return "".join(out)
