"""The emulated Services API: WSGI routing of the Tasks API, bearer auth, API faults."""

from __future__ import annotations

import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tap_spaaza_users.sandbox.errors import ApiError, reject
from tap_spaaza_users.sandbox.storage import object_path
from tap_spaaza_users.sandbox.validation import parse_task_body

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox.faults import Fault, FaultStore
    from tap_spaaza_users.sandbox.lifecycle import Engine
    from tap_spaaza_users.sandbox.storage import Signer
    from tap_spaaza_users.sandbox.tasks import Task

_BEARER = re.compile(r"^Bearer\s+([^:\s]+):(\S+)$")
ROUTES = Map(
    [
        Rule("/tasks", methods=["POST"], endpoint="create"),
        Rule("/tasks", methods=["GET"], endpoint="list"),
        Rule("/tasks/<int:task_id>", methods=["GET"], endpoint="get"),
        Rule("/tasks/<int:task_id>", methods=["DELETE"], endpoint="delete"),
        Rule("/tasks/<int:task_id>/execute", methods=["POST"], endpoint="execute"),
        Rule("/tasks/<int:task_id>/download_url", methods=["GET"], endpoint="download_url"),
    ],
    strict_slashes=False,
)
STATUS_NAMES = {429: "too_many_requests", 500: "internal_error", 502: "bad_gateway"}


@dataclass(frozen=True)
class Token:
    """An access token: its secret and the chain it is scoped to."""

    secret: str
    chain: int


def json_response(body: Any, status: int = 200) -> Response:  # noqa: ANN401 - any JSON
    """Return a JSON response."""
    return Response(json.dumps(body), status=status, mimetype="application/json")


def error_response(error: ApiError) -> Response:
    """Return the contract's JSON error response."""
    response = json_response(error.body(), error.status)
    if error.status == 401:  # noqa: PLR2004
        response.headers["WWW-Authenticate"] = 'Bearer realm="spaaza"'
    return response


def fault_response(fault: Fault) -> Response:
    """Return the answer of an injected ``status`` fault."""
    status = int(fault.params.get("status", 503))
    if "body" in fault.params:
        response = Response(str(fault.params["body"]), status=status)
    else:
        name = STATUS_NAMES.get(status, "injected_fault")
        response = error_response(ApiError(status, name, f"injected {status} fault"))
    retry_after = fault.params.get("retry_after")
    if retry_after is not None:
        is_number = isinstance(retry_after, (int, float))
        response.headers["Retry-After"] = str(int(retry_after)) if is_number else str(retry_after)
    return response


def retry_after_date(seconds: float) -> str:
    """Return an HTTP date ``seconds`` from real now, for a ``Retry-After`` header."""
    return http_date(time.time() + seconds)


class ApiApp:
    """Answers Tasks API requests for the chains whose tokens it knows."""

    def __init__(
        self,
        engine: Engine,
        signer: Signer,
        faults: FaultStore,
        tokens: dict[str, Token],
        storage_url: Callable[[], str],
    ) -> None:
        """Wire the API to the task engine, URL signer, faults and tokens."""
        self.engine = engine
        self.signer = signer
        self.faults = faults
        self.tokens = tokens
        self.storage_url = storage_url

    def respond(self, request: Request) -> Response:
        """Answer one API request (the ``/_sandbox`` namespace is routed elsewhere)."""
        fault = self.faults.take(("status",), request.method, request.path)
        if fault is not None:
            return fault_response(fault)
        try:
            chain = self._authenticate(request)
            rule, args = ROUTES.bind_to_environ(request.environ).match()
            handler = getattr(self, "_" + str(rule))
            return handler(request, chain, **args)
        except ApiError as error:
            return error_response(error)
        except HTTPException as error:
            name = (error.name or "error").lower().replace(" ", "_")
            status = error.code or 500
            return error_response(ApiError(status, name, error.description or name))

    def _authenticate(self, request: Request) -> int:
        """Return the chain of the request's bearer token.

        Raises:
            ApiError: 401 when the token is missing, malformed or wrong.
        """
        header = request.headers.get("Authorization", "")
        if not header:
            reject("missing_credentials", "no Authorization header", 401)
        match = _BEARER.match(header.strip())
        if not match:
            reject("malformed_credentials", "use Authorization: Bearer ID:SECRET", 401)
        token = self.tokens.get(match.group(1))
        if token is None or not hmac.compare_digest(token.secret, match.group(2)):
            reject("invalid_credentials", "unknown access token or wrong secret", 401)
        return token.chain

    def _task(self, chain: int, task_id: int) -> Task:
        """Return the chain's task ``task_id``; another chain's task is not found."""
        task = self.engine.store.get(task_id)
        if task is None or task.chain != chain:
            reject("task_not_found", f"no task {task_id}", 404)
        return task

    def _create(self, request: Request, chain: int) -> Response:
        """``POST /tasks``."""
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            reject("invalid_json", "the body is not valid JSON")
        parsed = parse_task_body(body, chain, self.engine.saved_segments)
        return json_response(self.engine.create(parsed).to_json(), 201)

    def _list(self, request: Request, chain: int) -> Response:
        """``GET /tasks``: the chain's tasks as a bare array, filtered and paged."""
        args = request.args
        tasks = [t for t in self.engine.store.all().values() if t.chain == chain]
        if "status" in args:
            tasks = [t for t in tasks if t.code == args["status"]]
        if "action" in args:
            tasks = [t for t in tasks if t.target.get("action") == args["action"]]
        if "campaign_id" in args:
            tasks = [t for t in tasks if _campaign(t) == args["campaign_id"]]
        offset = _int_arg(args, "offset", 0)
        limit = _int_arg(args, "limit", len(tasks))
        page = sorted(tasks, key=lambda t: t.id)[offset : offset + limit]
        return json_response([t.to_json() for t in page])

    def _get(self, request: Request, chain: int, task_id: int) -> Response:
        """``GET /tasks/{id}`` with ``log_limit``/``offset``."""
        task = self._task(chain, task_id)
        log_limit = _int_arg(request.args, "log_limit", 10)
        offset = _int_arg(request.args, "offset", 0)
        return json_response(task.to_json(log_limit, offset))

    def _delete(self, _request: Request, chain: int, task_id: int) -> Response:
        """``DELETE /tasks/{id}`` -> 204."""
        self._task(chain, task_id)
        self.engine.store.pop(task_id)
        return Response(status=204)

    def _execute(self, _request: Request, chain: int, task_id: int) -> Response:
        """``POST /tasks/{id}/execute``: run now, answer the state once it ends."""
        return json_response(self.engine.execute(self._task(chain, task_id)))

    def _download_url(self, _request: Request, chain: int, task_id: int) -> Response:
        """``GET /tasks/{id}/download_url`` -> ``{"url": ...}`` for a DONE task."""
        task = self._task(chain, task_id)
        if task.code != "DONE":
            reject("task_not_done", f"task {task_id} is {task.code}, not DONE", 409)
        path = object_path(task)
        return json_response({"url": f"{self.storage_url()}{path}?{self.signer.sign(path)}"})


def _campaign(task: Task) -> str:
    """Return the task's campaign id as text ("" when it has none)."""
    for source in (task.extra, task.target, task.trigger):
        if source.get("campaign_id") is not None:
            return str(source["campaign_id"])
    return ""


def _int_arg(args: Any, name: str, default: int) -> int:  # noqa: ANN401 - werkzeug MultiDict
    """Return a non-negative integer query argument.

    Raises:
        ApiError: 400 when it is not one.
    """
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        reject("invalid_parameter", f"{name} must be a non-negative integer")
    return value
