"""Request inspection: every request the API and storage servers answered."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """What a client sent, and the status it got."""

    server: str  # "api" or "storage"
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int
    #: when the request arrived (``time.time()``, before it was answered)
    received_at: float

    def describe(self) -> dict[str, Any]:
        """Return the request as JSON for the control API."""
        return {
            "server": self.server,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "json": self.json,
            "status": self.status,
            "received_at": self.received_at,
        }


def parse_json(body: bytes) -> Any:  # noqa: ANN401 - any JSON value
    """Parse a request body as JSON, ``None`` when empty or not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


class RequestLog:
    """A thread-safe list of recorded requests."""

    def __init__(self) -> None:
        """Start empty."""
        self._items: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def add(self, item: RecordedRequest) -> None:
        """Record a request."""
        with self._lock:
            self._items.append(item)

    def all(self) -> list[RecordedRequest]:
        """Return a copy of every recorded request, oldest first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._items.clear()
