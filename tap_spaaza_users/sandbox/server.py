"""Threaded werkzeug servers, and the WSGI wrapper that records every request."""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tap_spaaza_users.sandbox.recording import RecordedRequest, RequestLog, parse_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: environ keys: the request's handler (to frame an answer by closing), and "answer dropped"
HANDLER_KEY, DROPPED_KEY = "sandbox.handler", "sandbox.dropped"
#: the recorded status of a request whose connection was closed without an answer
DROPPED_STATUS = 0
#: the contract's error body of a request the sandbox failed to answer
CRASH_BODY = {"error": {"code": 500, "name": "internal_error",
                        "description": "the sandbox failed to answer; see its log"}}  # fmt: skip
LOGGER = logging.getLogger(__name__)


def drop_connection(environ: WSGIEnvironment) -> None:
    """Close the client's connection now, so the response the app returns is never sent."""
    environ[DROPPED_KEY] = True
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.shutdown(socket.SHUT_RDWR)


def close_delimited(environ: WSGIEnvironment) -> None:
    """Answer in HTTP/1.0: with no ``Content-Length`` the body then ends when the server closes."""
    handler = environ.get(HANDLER_KEY)
    if isinstance(handler, WSGIRequestHandler):
        handler.protocol_version = "HTTP/1.0"


class QuietHandler(WSGIRequestHandler):
    """A request handler that does not log every request line."""

    def make_environ(self) -> WSGIEnvironment:
        """Add the handler itself to the environ (see ``close_delimited``)."""
        environ = super().make_environ()
        environ[HANDLER_KEY] = self
        return environ

    def log_request(self, *_args: object, **_kwargs: object) -> None:
        """Skip the access log (request inspection covers it)."""

    def log(self, level: str, message: str, *args: object) -> None:
        """Send werkzeug's messages to this module's logger at DEBUG."""
        logging.getLogger(__name__).debug("werkzeug %s: %s", level, message % args)


class RecordingApp:
    """A WSGI app answering through ``handler`` and recording each request."""

    def __init__(
        self,
        server: str,
        handler: Callable[[Request], Response],
        log: RequestLog,
        unrecorded_prefix: str | None = None,
    ) -> None:
        """Record requests as coming from ``server`` ("api" or "storage")."""
        self.server = server
        self.handler = handler
        self.log = log
        self.unrecorded_prefix = unrecorded_prefix

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer and record one request."""
        received_at = time.time()
        request = Request(environ)
        body = request.get_data(cache=True)
        try:
            response = self.handler(request)
        except Exception:  # a sandbox bug: answer (and record) a 500, never drop the request
            LOGGER.exception("Sandbox failed to answer %s %s", request.method, request.path)
            response = Response(json.dumps(CRASH_BODY), status=500, mimetype="application/json")
        if not (self.unrecorded_prefix and request.path.startswith(self.unrecorded_prefix)):
            self.log.add(
                RecordedRequest(
                    server=self.server,
                    method=request.method,
                    path=request.path,
                    query=request.args.to_dict(),
                    headers=dict(request.headers.items()),
                    json=parse_json(body),
                    status=DROPPED_STATUS if environ.get(DROPPED_KEY) else response.status_code,
                    received_at=received_at,
                )
            )
        return response(environ, start_response)


class ServerThread:
    """A threaded werkzeug server on ``host:port`` (0 picks a free port), in a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:  # noqa: ANN401
        """Bind now, so the port is known before ``start``.

        Raises:
            OSError: the port is in use, or the host is not an address of this machine.
        """
        try:
            self.server: BaseWSGIServer = make_server(
                host, port, app, threaded=True, request_handler=QuietHandler
            )
        except SystemExit:  # werkzeug exits (after a note on stderr) when it cannot bind
            msg = f"cannot listen on {host}:{port}: in use, or not an address of this machine"
            raise OSError(errno.EADDRINUSE, msg) from None
        self.server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Return the base URL, ``http://host:port``."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.server_close()
