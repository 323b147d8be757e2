"""The error the emulated API answers with: status plus a snake_case name and a description."""

from __future__ import annotations

from typing import NoReturn


class ApiError(Exception):
    """An HTTP error answer of the Services API, body ``{"error": {...}}``."""

    def __init__(self, status: int, name: str, description: str) -> None:
        """Keep the status, the snake_case name and the human description."""
        super().__init__(description)
        self.status = status
        self.name = name
        self.description = description

    def body(self) -> dict[str, object]:
        """Return the JSON error body of the contract."""
        return {"error": {"code": self.status, "name": self.name, "description": self.description}}


def reject(name: str, description: str, status: int = 400) -> NoReturn:
    """Raise the API error ``status`` (400 by default) naming what is wrong in the request.

    Raises:
        ApiError: always.
    """
    raise ApiError(status, name, description)
