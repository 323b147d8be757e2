"""The emulated Services API: WSGI routing of the Tasks API, bearer auth, API faults."""

from __future__ import annotations

import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tap_spaaza_users.sandbox.errors import ApiError, reject
from tap_spaaza_users.sandbox.server import drop_connection
from tap_spaaza_users.sandbox.storage import object_path
from tap_spaaza_users.sandbox.validation import parse_task_body

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox.faults import Fault, FaultStore
    from tap_spaaza_users.sandbox.lifecycle import Engine
    from tap_spaaza_users.sandbox.options import SandboxOptions
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


def fault_response(fault: Fault, default_status: int = 503) -> Response:
    """Return the answer of an injected ``status`` fault."""
    status = int(fault.params.get("status", default_status))
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


def lose_answer(fault: Fault, response: Response, request: Request) -> Response:
    """Lose the answer of a request already carried out (an ``answer_lost`` fault).

    Params: ``hold_seconds`` (wait first), then ``then``: ``error`` (answer ``status``, default
    502, instead), ``answer`` (the real answer, late) or ``drop`` (close without an answer).
    """
    hold = float(fault.params.get("hold_seconds", 0))
    if hold > 0:
        time.sleep(hold)
    then = fault.params.get("then", "error")
    if then == "answer":
        return response
    if then == "drop":
        drop_connection(request.environ)
        return response
    return fault_response(fault, 502)


def retry_after_date(seconds: float) -> str:
    """Return an HTTP date ``seconds`` from real now, for a ``Retry-After`` header."""
    return http_date(time.time() + seconds)


class ApiApp:
    """Answers Tasks API requests for the chains whose tokens it knows."""

    def __init__(  # noqa: PLR0913, PLR0917 - the sandbox wires six collaborators
        self,
        engine: Engine,
        signer: Signer,
        faults: FaultStore,
        tokens: dict[str, Token],
        storage_url: Callable[[], str],
        options: Callable[[], SandboxOptions],
    ) -> None:
        """Wire the API to the task engine, URL signer, faults, tokens and options."""
        self.engine = engine
        self.signer = signer
        self.faults = faults
        self.tokens = tokens
        self.storage_url = storage_url
        self.options = options

    def respond(self, request: Request) -> Response:
        """Answer one API request (the ``/_sandbox`` namespace is routed elsewhere)."""
        fault = self.faults.take(("status",), request.method, request.path)
        if fault is not None:
            return fault_response(fault)
        lost = self.faults.take(("answer_lost",), request.method, request.path)
        response = self._answer(request)
        return response if lost is None else lose_answer(lost, response, request)

    def _answer(self, request: Request) -> Response:
        """Carry out one API request and return its answer."""
        try:
            chain = self._authenticate(request)
            rule, args = ROUTES.bind_to_environ(request.environ).match()
            handler = getattr(self, "_" + str(rule))
            return cast("Response", handler(request, chain, **args))
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
        except RecursionError:
            reject("invalid_json", "the body is JSON nested too deep")
        parsed = parse_task_body(body, chain, self.engine.saved_segments)
        return json_response(self._render(self.engine.create(parsed)), 201)

    def _list(self, request: Request, chain: int) -> Response:
        """``GET /tasks``: the chain's tasks as a bare array, filtered and paged."""
        args = request.args
        tasks = [t for t in self.engine.store.all().values() if t.chain == chain]
        if "status" in args:
            tasks = [t for t in tasks if t.code == args["status"].upper()]
        if "action" in args:
            tasks = [t for t in tasks if t.target.get("action") == args["action"]]
        if "campaign_id" in args:
            tasks = [t for t in tasks if _campaign(t) == args["campaign_id"]]
        offset = _int_arg(args, "offset", 0)
        if self.faults.take(("ignore_offset",), request.method, request.path) is not None:
            offset = 0  # a proxy, or an API version, that does not page
        limit = _int_arg(args, "limit", len(tasks))
        newest_first = sorted(tasks, key=lambda t: t.id, reverse=True)
        return json_response([self._render(t) for t in newest_first[offset : offset + limit]])

    def _get(self, request: Request, chain: int, task_id: int) -> Response:
        """``GET /tasks/{id}`` with ``log_limit``/``offset``."""
        task = self._task(chain, task_id)
        log_limit = _int_arg(request.args, "log_limit", 10)
        offset = _int_arg(request.args, "offset", 0)
        return json_response(self._render(task, log_limit, offset))

    def _delete(self, _request: Request, chain: int, task_id: int) -> Response:
        """``DELETE /tasks/{id}`` -> 204."""
        self._task(chain, task_id)
        self.engine.store.pop(task_id)
        return Response(status=204)

    def _execute(self, _request: Request, chain: int, task_id: int) -> Response:
        """``POST /tasks/{id}/execute``: run now, answer the state once it ends."""
        return json_response(self._cased(self.engine.execute(self._task(chain, task_id))))

    def _download_url(self, request: Request, chain: int, task_id: int) -> Response:
        """``GET /tasks/{id}/download_url`` -> ``{"url": ...}`` for a DONE task."""
        task = self._task(chain, task_id)
        if task.code != "DONE":
            reject("task_not_done", f"task {task_id} is {task.code}, not DONE", 409)
        path = object_path(task)
        base = self.storage_url()
        insecure = self.faults.take(("insecure_download_url",), request.method, request.path)
        if insecure is not None:
            base = "http://" + str(insecure.params.get("host", "storage.example.com"))
        return json_response({"url": f"{base}{path}?{self.signer.sign(path)}"})

    def _render(self, task: Task, log_limit: int = 10, offset: int = 0) -> dict[str, Any]:
        """Return the task object as answered, ``state.code`` in the configured letter case."""
        body = task.to_json(log_limit, offset)
        body["state"] = self._cased(body["state"])
        return body

    def _cased(self, state: dict[str, Any]) -> dict[str, Any]:
        """Return a ``state`` object with its code in the configured letter case."""
        if self.options().state_code_case == "lower":
            return {**state, "code": str(state["code"]).lower()}
        return state


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
