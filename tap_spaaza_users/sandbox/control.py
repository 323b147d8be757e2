"""The ``/_sandbox/...`` control namespace: reset, clock, users, faults, dialect, options, ..."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.sandbox.app import json_response
from tap_spaaza_users.sandbox.clock import iso_z

if TYPE_CHECKING:
    from datetime import datetime

    from werkzeug.wrappers import Request, Response

    from tap_spaaza_users.sandbox.clock import SandboxClock
    from tap_spaaza_users.sandbox.faults import FaultStore
    from tap_spaaza_users.sandbox.lifecycle import Engine
    from tap_spaaza_users.sandbox.options import SandboxOptions
    from tap_spaaza_users.sandbox.recording import RecordedRequest, RequestLog
    from tap_spaaza_users.sandbox.tasks import Task
    from tap_spaaza_users.sandbox.validation import SavedSegment

ROUTES = Map(
    [
        Rule("/_sandbox/reset", methods=["POST"], endpoint="reset"),
        Rule("/_sandbox/clock", methods=["GET", "POST"], endpoint="clock"),
        Rule("/_sandbox/users", methods=["GET", "POST"], endpoint="users"),
        Rule("/_sandbox/users/<int:user_id>", methods=["PATCH", "DELETE"], endpoint="user"),
        Rule("/_sandbox/faults", methods=["GET", "POST", "DELETE"], endpoint="faults"),
        Rule("/_sandbox/dialect", methods=["GET", "POST", "DELETE"], endpoint="dialect"),
        Rule("/_sandbox/options", methods=["GET", "POST", "DELETE"], endpoint="options"),
        Rule("/_sandbox/requests", methods=["GET", "DELETE"], endpoint="requests"),
        Rule("/_sandbox/segments", methods=["GET"], endpoint="segments"),
        Rule("/_sandbox/tasks", methods=["GET"], endpoint="tasks"),
        Rule("/_sandbox/tasks/<int:task_id>", methods=["PATCH"], endpoint="task"),
        Rule("/_sandbox", methods=["GET"], endpoint="info"),
    ],
    strict_slashes=False,
)


class ControlError(Exception):
    """A control request that cannot be honoured (answered 400/404)."""

    def __init__(self, status: int, message: str) -> None:
        """Keep the status and the message."""
        super().__init__(message)
        self.status = status


def _json_object(data: bytes) -> dict[str, Any]:
    """Return a control request's body: a JSON object (``{}`` when empty).

    Raises:
        ControlError: 400 when it is not a JSON object.
    """
    try:
        body = json.loads(data or b"{}")
    except (ValueError, RecursionError):
        raise ControlError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, 'the body must be a JSON object, like {"count": 1}')
    return body


class Controlled(Protocol):
    """What the control app steers: the sandbox (``core.Sandbox``), seen from here."""

    clock: SandboxClock
    faults: FaultStore
    engine: Engine
    options: SandboxOptions
    request_log: RequestLog

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests answered so far."""
        ...

    @property
    def tasks(self) -> dict[int, Task]:
        """The tasks by id."""
        ...

    @property
    def saved_segments(self) -> dict[int, SavedSegment]:
        """The saved segments by id."""
        ...

    def describe(self) -> dict[str, Any]:
        """URLs, chain and demo credentials."""
        ...

    def reset(self) -> None:
        """Back to the initial state."""
        ...

    def add_users(
        self,
        n: int,
        created_date: datetime | None = None,
        visible_after_seconds: float | None = None,
    ) -> list[int]:
        """Add users; their ids."""
        ...

    def user_count(self) -> int:
        """How many users there are."""
        ...

    def update_user(self, user_id: int, **fields: object) -> None:
        """Change a user's columns."""
        ...

    def delete_user(self, user_id: int) -> None:
        """Delete a user."""
        ...

    def inject(self, kind: str, **params: object) -> None:
        """Arm a fault."""
        ...

    def clear_faults(self) -> None:
        """Disarm every fault."""
        ...

    def set_csv_dialect(self, **options: object) -> None:
        """Change the export file's CSV dialect."""
        ...

    def reset_csv_dialect(self) -> None:
        """Back to the default dialect."""
        ...

    def set_options(self, **changes: object) -> None:
        """Change the sandbox's options."""
        ...

    def reset_options(self) -> None:
        """Back to the initial options."""
        ...

    def backdate_task(self, task_id: int, created_date: datetime) -> Task:
        """Move a task's creation into the past."""
        ...


class ControlApp:
    """Answers ``/_sandbox`` requests against a sandbox (no auth: it is a test tool)."""

    def __init__(self, sandbox: Controlled) -> None:
        """Control ``sandbox``."""
        self.sandbox = sandbox

    def respond(self, request: Request) -> Response:
        """Answer one control request."""
        try:
            endpoint, args = ROUTES.bind_to_environ(request.environ).match()
            body = _json_object(request.get_data())
            result = getattr(self, "_" + str(endpoint))(request.method, body, **args)
        except HTTPException as error:
            return json_response({"error": error.description}, error.code or 500)
        except ControlError as error:
            return json_response({"error": str(error)}, error.status)
        except OverflowError:
            return json_response({"error": "a date or duration is out of range"}, 400)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            return json_response({"error": str(error)}, 400)
        if result is None:
            return json_response({}, 204)
        return json_response(result)

    def _info(self, _method: str, _body: Any) -> Any:  # noqa: ANN401
        """``GET /_sandbox``: addresses, chain and demo credentials."""
        return self.sandbox.describe()

    def _reset(self, _method: str, _body: Any) -> Any:  # noqa: ANN401
        """``POST /_sandbox/reset``."""
        self.sandbox.reset()
        return {"reset": True}

    def _clock(self, method: str, body: Any) -> Any:  # noqa: ANN401
        """``GET``/``POST /_sandbox/clock`` with ``{"set": iso}`` or ``{"advance": seconds}``."""
        if method == "POST":
            if "set" in body:
                self.sandbox.clock.set(parse_utc(str(body["set"])))
            if "advance" in body:
                self.sandbox.clock.advance(float(body["advance"]))
        return {"now": iso_z(self.sandbox.clock.now())}

    def _users(self, method: str, body: Any) -> Any:  # noqa: ANN401
        """``GET`` (count) / ``POST`` (add) ``/_sandbox/users``."""
        if method == "POST":
            created = body.get("created_date")
            ids = self.sandbox.add_users(
                int(body.get("count", 1)),
                created_date=parse_utc(str(created)) if created else None,
                visible_after_seconds=body.get("visible_after_seconds"),
            )
            return {"ids": ids}
        return {"count": self.sandbox.user_count()}

    def _user(self, method: str, body: Any, user_id: int) -> Any:  # noqa: ANN401
        """``PATCH`` (update fields) / ``DELETE`` ``/_sandbox/users/{id}``."""
        try:
            if method == "DELETE":
                self.sandbox.delete_user(user_id)
                return None
            self.sandbox.update_user(user_id, **body)
        except KeyError as error:
            status = 404 if "no user" in str(error) else 400
            raise ControlError(status, str(error.args[0])) from None
        return {"id": user_id, "updated": sorted(body)}

    def _faults(self, method: str, body: Any) -> Any:  # noqa: ANN401
        """``POST`` (arm ``{"kind": ..., ...}``) / ``DELETE`` (clear) / ``GET`` (list)."""
        if method == "POST":
            params = dict(body)
            self.sandbox.inject(str(params.pop("kind")), **params)
        elif method == "DELETE":
            self.sandbox.clear_faults()
        return [fault.describe() for fault in self.sandbox.faults.armed()]

    def _dialect(self, method: str, body: Any) -> Any:  # noqa: ANN401
        """``POST`` (set options) / ``DELETE`` (default) / ``GET`` the CSV dialect."""
        if method == "POST":
            self.sandbox.set_csv_dialect(**body)
        elif method == "DELETE":
            self.sandbox.reset_csv_dialect()
        return self.sandbox.engine.dialect.describe()

    def _options(self, method: str, body: Any) -> Any:  # noqa: ANN401
        """``POST`` (change options) / ``DELETE`` (those it started with) / ``GET`` the options."""
        if method == "POST":
            self.sandbox.set_options(**body)
        elif method == "DELETE":
            self.sandbox.reset_options()
        return self.sandbox.options.describe()

    def _requests(self, method: str, _body: Any) -> Any:  # noqa: ANN401
        """``GET`` (list) / ``DELETE`` (clear) recorded requests."""
        if method == "DELETE":
            self.sandbox.request_log.clear()
            return None
        return [item.describe() for item in self.sandbox.requests]

    def _segments(self, _method: str, _body: Any) -> Any:  # noqa: ANN401
        """``GET /_sandbox/segments``: the saved segments."""
        return [segment.describe() for segment in self.sandbox.saved_segments.values()]

    def _tasks(self, _method: str, _body: Any) -> Any:  # noqa: ANN401
        """``GET /_sandbox/tasks``: every task of every chain, with all logs."""
        return [task.to_json(log_limit=10**6) for task in self.sandbox.tasks.values()]

    def _task(self, _method: str, body: Any, task_id: int) -> Any:  # noqa: ANN401
        """``PATCH /_sandbox/tasks/{id}`` with ``{"created_date": iso}``: make a task older."""
        created = parse_utc(str(body["created_date"]))
        try:
            task = self.sandbox.backdate_task(task_id, created)
        except LookupError as error:
            raise ControlError(404, str(error.args[0])) from None
        return task.to_json(log_limit=10**6)
