"""Fault injection: one-shot (or N-shot) failures scoped by kind, server, method and path."""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Any

#: fault kind -> where it fires ("api", "storage" or "task")
FAULT_KINDS: dict[str, str] = {
    "status": "api",
    "answer_lost": "api",
    "insecure_download_url": "api",
    "storage_status": "storage",
    "range_forbidden": "storage",
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
    "short_export": "task",
    "task_clock_lag": "task",
}


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
    _check_params(kind, rest)
    return Fault(kind, rest, times, method, path)


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
    for name in ("hold_seconds", "after_bytes", "at_byte", "count", "newer_by_seconds"):
        if name in params and float(params[name]) < 0:
            msg = f"{kind} {name} must be a non-negative number"
            raise ValueError(msg)
    if kind == "short_export" and int(params.get("rows", 0)) < 0:
        msg = "short_export rows must be a non-negative number"
        raise ValueError(msg)


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
