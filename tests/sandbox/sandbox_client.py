"""A client of the sandbox's Tasks API for the sandbox's tests, and segment builders."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

import requests

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

    SandboxFactory = Callable[..., Sandbox]

EXPORT_TARGET = {"action": "export", "export_index": "users", "export_format": "csv"}


def now_iso() -> str:
    """Return real UTC now as the tap sends it in trigger.once."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiClient:
    """Talks to a sandbox's Tasks API with its demo token."""

    def __init__(self, sb: Sandbox, token_id: str | None = None, secret: str | None = None) -> None:
        """Use the demo token unless another one is given."""
        self.sb = sb
        self.auth = f"Bearer {token_id or sb.token_id}:{secret or sb.token_secret}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send an authenticated API request."""
        headers = {"Authorization": self.auth, **kwargs.pop("headers", {})}
        return requests.request(method, self.sb.url + path, headers=headers, timeout=30, **kwargs)

    def body(self, segment: dict[str, Any] | None = None, **trigger: Any) -> dict[str, Any]:
        """Return a POST /tasks body; trigger.once is the sandbox's now unless given."""
        once = self.sb.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        trig: dict[str, Any] = {"once": once, **trigger}
        if segment is not None:
            trig["segment"] = segment
        return {"chain": self.sb.chain_id, "desc": "test export", "target": EXPORT_TARGET,
                "trigger": trig}  # fmt: skip

    def create(self, segment: dict[str, Any] | None = None, **trigger: Any) -> dict[str, Any]:
        """Create a task and return it."""
        response = self.call("POST", "/tasks", json=self.body(segment, **trigger))
        assert response.status_code == 201, response.text
        return cast("dict[str, Any]", response.json())

    def wait(self, task_id: int, codes: tuple[str, ...] = ("DONE", "ERROR")) -> dict[str, Any]:
        """Poll a task until its state is one of ``codes``."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            task = self.call("GET", f"/tasks/{task_id}").json()
            if task["state"]["code"] in codes:
                return cast("dict[str, Any]", task)
            time.sleep(0.02)
        msg = f"task {task_id} never reached {codes}"
        raise AssertionError(msg)

    def download_url(self, task_id: int) -> str:
        """Return the task's pre-signed download URL."""
        response = self.call("GET", f"/tasks/{task_id}/download_url")
        assert response.status_code == 200, response.text
        return cast("str", response.json()["url"])

    def done_url(self) -> tuple[int, str]:
        """Create a task, wait for DONE, and return its id and a download URL."""
        task_id = self.create()["id"]
        assert self.wait(task_id)["state"]["code"] == "DONE"
        return task_id, self.download_url(task_id)

    def control(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a ``/_sandbox`` control request (no auth)."""
        return requests.request(method, f"{self.sb.url}/_sandbox{path}", timeout=30, **kwargs)

    def export(self, segment: dict[str, Any] | None = None, **trigger: Any) -> requests.Response:
        """Create a task, wait for DONE, and download its file."""
        task = self.create(segment, **trigger)
        assert self.wait(task["id"])["state"]["code"] == "DONE"
        return requests.get(self.download_url(task["id"]), timeout=30)

    def export_ids(self, segment: dict[str, Any] | None = None) -> set[int]:
        """Export and return the ids in the file."""
        response = self.export(segment)
        rows = csv.DictReader(io.StringIO(response.content.decode("utf-8")))
        return {int(row["id"]) for row in rows}


def segment_of(*rules: dict[str, Any], join: str = "all", chain_id: int = 1234) -> dict[str, Any]:
    """Build an inline segment."""
    return {"entity": "people", "index": "users", "join": join, "chain_id": chain_id,
            "rules": list(rules)}  # fmt: skip
