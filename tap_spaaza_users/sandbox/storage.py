"""The S3-like storage endpoint: pre-signed URLs, signature/expiry checks, Range, ETag, faults."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from tap_spaaza_users.sandbox.bodies import (
    BadGzip,
    Pacer,
    corrupted,
    fault_limit,
    fault_pacers,
    file_md5,
    stream,
)
from tap_spaaza_users.sandbox.faults import replace_export
from tap_spaaza_users.sandbox.server import close_delimited

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tap_spaaza_users.sandbox.clock import SandboxClock
    from tap_spaaza_users.sandbox.faults import Fault, FaultStore
    from tap_spaaza_users.sandbox.options import SandboxOptions
    from tap_spaaza_users.sandbox.tasks import Task

BUCKET = "spaaza-exports"
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_PATH = re.compile(r"^/" + BUCKET + r"/(\d+)/User_Export-(\d+)\.csv$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: a ``Range`` no byte of the object can satisfy (answered 416)
UNSATISFIABLE = (-1, -1)
#: S3 error codes of the statuses a ``storage_status`` fault usually injects
STATUS_CODES = {
    429: "SlowDown",
    500: "InternalError",
    502: "BadGateway",
    503: "SlowDown",
    504: "GatewayTimeout",
}
#: the faults that spoil a body (``bad_gzip`` changes the whole body: not on a ``Range`` request)
RANGE_BODY_FAULTS = (
    "drop_connection",
    "short_body",
    "slow_download",
    "early_close",
    "corrupt_body",
)
BODY_FAULTS = (*RANGE_BODY_FAULTS, "bad_gzip")


class Signer:
    """Signs and checks storage URLs with an HMAC that only this sandbox knows."""

    def __init__(self, clock: SandboxClock, ttl_seconds: float) -> None:
        """Sign with a fresh random key; URLs live ``ttl_seconds`` on the sandbox clock."""
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self._key = secrets.token_bytes(32)

    def _signature(self, path: str, date: str, expires: str) -> str:
        """Return the hex HMAC of what a URL grants."""
        message = f"GET\n{path}\n{date}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, path: str) -> str:
        """Return the query string that pre-signs a GET of ``path``."""
        date = self.clock.now().strftime(_DATE_FORMAT)
        expires = str(max(1, round(self.ttl_seconds)))
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": date,
            "X-Amz-Expires": expires,
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": self._signature(path, date, expires),
        }
        return urlencode(query)

    def check(self, path: str, args: dict[str, str]) -> str | None:
        """Return why a request is denied ("expired" / "signature"), or ``None`` if it is valid."""
        date, expires = args.get("X-Amz-Date", ""), args.get("X-Amz-Expires", "")
        expected = self._signature(path, date, expires)
        if not hmac.compare_digest(expected, args.get("X-Amz-Signature", "")):
            return "signature"
        try:
            issued = datetime.strptime(date, _DATE_FORMAT).replace(tzinfo=timezone.utc)
            lifetime = timedelta(seconds=int(expires))
        except ValueError:
            return "signature"
        return "expired" if self.clock.now() > issued + lifetime else None


def object_path(task: Task) -> str:
    """Return the storage path of a task's export file."""
    return f"/{BUCKET}/{task.chain}/{task.file_name}"


def xml_error(status: int, code: str, message: str) -> Response:
    """Return an S3-style XML error response."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return Response(body, status=status, mimetype="application/xml")


EXPIRED = (403, "AccessDenied", "Request has expired")
TAMPERED = (
    403,
    "AccessDenied",
    (
        "The request signature we calculated does not match the signature you provided "
        "(signature does not match)"
    ),
)
TWO_AUTHS = (
    400,
    "InvalidArgument",
    (
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
        "Signature query string parameter or the Authorization header should be specified"
    ),
)


class StorageApp:
    """The WSGI app of the storage endpoint."""

    def __init__(
        self,
        signer: Signer,
        faults: FaultStore,
        find_task: Callable[[int], Task | None],
        options: Callable[[], SandboxOptions],
    ) -> None:
        """Serve the files of the tasks ``find_task`` knows, at the options' bandwidth."""
        self.signer = signer
        self.faults = faults
        self.find_task = find_task
        self.options = options
        self.link = Pacer(1.0)

    def respond(self, request: Request) -> Response:
        """Answer one storage request."""
        refused = self._refusal(request)
        if refused is not None:
            return refused
        denied = self.signer.check(request.path, request.args.to_dict())
        if denied == "signature":
            return xml_error(*TAMPERED)
        if denied == "expired" or self.faults.take(("url_expired",), request.method, request.path):
            return xml_error(*EXPIRED)
        task = self._task(request.path)
        expired = self.faults.take(("file_expired",), request.method, request.path)
        if expired is not None or task is None or task.file is None or task.code != "DONE":
            return xml_error(404, "NoSuchKey", "The specified key does not exist.")
        if not task.file.exists():
            return xml_error(404, "NoSuchKey", "The specified key does not exist.")
        return self._file_response(request, task)

    def _refusal(self, request: Request) -> Response | None:
        """Return the answer to a request refused before its signature is checked, if any."""
        if request.method not in ("GET", "HEAD"):
            return xml_error(405, "MethodNotAllowed", "The specified method is not allowed")
        if "Authorization" in request.headers:
            return xml_error(*TWO_AUTHS)
        injected = self.faults.take(("storage_status",), request.method, request.path)
        if injected is not None:
            return status_fault_response(injected)
        moved = self.faults.take(("redirect",), request.method, request.path)
        if moved is not None:
            return redirect_response(moved, request.url)
        if "Range" in request.headers:
            # Storage whose policy refuses ranged GETs, while a plain GET works.
            refused = self.faults.take(("range_forbidden",), request.method, request.path)
            if refused is not None:
                return xml_error(403, "AccessDenied", "Access Denied")
        return None

    def _task(self, path: str) -> Task | None:
        """Return the task whose file ``path`` names, if any."""
        match = _PATH.match(path)
        if not match:
            return None
        task = self.find_task(int(match.group(2)))
        return task if task is not None and task.chain == int(match.group(1)) else None

    def _file_response(self, request: Request, task: Task) -> Response:
        """Answer with the file, or the part a ``Range`` asks for (if ``If-Range`` holds)."""
        path = task.file
        assert path is not None  # noqa: S101 - checked by the caller
        ranged = request.method == "GET" and "Range" in request.headers
        if ranged and self.faults.take(("object_replaced",), request.method, request.path):
            replace_export(path)
            task.md5 = file_md5(path)
        size = path.stat().st_size
        start, end, status = 0, size - 1, 200
        etag = f'"{task.md5}"' if task.md5 else f'"{task.id}-{size}"'
        headers: dict[str, Any] = {"Accept-Ranges": "bytes", "ETag": etag}
        wanted = byte_range(self._range(request, etag), size)
        if ranged and self.faults.take(("ignore_range",), request.method, request.path):
            wanted = None  # a server that ignores Range: the whole file, 200
        if wanted == UNSATISFIABLE:
            bad = xml_error(416, "InvalidRange", "The requested range is not satisfiable")
            bad.headers["Content-Range"] = f"bytes */{size}"
            return bad
        if wanted is not None:
            (start, end), status = wanted, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if task.content_encoding:
            headers["Content-Encoding"] = task.content_encoding
        length = end - start + 1
        headers["Content-Length"] = str(length)
        body: Iterator[bytes] | list[bytes] = [b""]
        if request.method == "GET":
            kinds = RANGE_BODY_FAULTS if wanted is not None else BODY_FAULTS
            fault = self.faults.take(kinds, request.method, request.path)
            if fault is not None and fault.kind == "bad_gzip":
                bad_gzip = BadGzip(path, fault)
                headers.pop("Content-Encoding", None)
                headers.pop("Content-Length", None)
                headers.update(bad_gzip.headers())
                body = stream(bad_gzip.handle, 0, bad_gzip.sent, self._pacers(None))
            else:
                body = self._body(path, start, length, fault)
            if fault is not None and fault.kind == "early_close":
                del headers["Content-Length"]
                if fault.params.get("framing", "close") == "close":
                    close_delimited(request.environ)
        response = Response(body, status=status, headers=headers, mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{task.file_name}"'
        return response

    def _range(self, request: Request, etag: str) -> str | None:
        """Return the ``Range`` to serve: none when ``If-Range`` does not hold.

        An ``ignore_if_range`` fault serves it anyway, as storage that does not know the header.
        """
        wanted = range_header(request, etag)
        if wanted is None and request.method == "GET" and "Range" in request.headers:
            ignored = self.faults.take(("ignore_if_range",), request.method, request.path)
            if ignored is not None:
                return request.headers.get("Range")
        return wanted

    def _body(self, path: Path, start: int, length: int, fault: Fault | None) -> Iterator[bytes]:
        """Stream ``length`` bytes from ``start``, spoiled by ``fault`` if one is armed."""
        handle = path.open("rb")
        limit = fault_limit(fault, handle, start, length)
        chunks = stream(handle, start, limit, self._pacers(fault))
        if fault is not None and fault.kind == "corrupt_body":
            return corrupted(chunks, int(fault.params.get("at_byte", length // 2)))
        return chunks

    def _pacers(self, fault: Fault | None) -> list[Pacer]:
        """Return the pacers of a body: the storage link's bandwidth, and a fault's throttle."""
        rate = self.options().storage_bytes_per_second
        if rate is None:
            return fault_pacers(fault)
        self.link.rate = float(rate)
        return [self.link, *fault_pacers(fault)]


def range_header(request: Request, etag: str) -> str | None:
    """Return the request's ``Range``, or ``None`` when its ``If-Range`` does not hold.

    As RFC 9110 says: ``If-Range`` holds when it is the object's own strong ``ETag``; a weak
    tag never matches, nor does a date (storage sends no ``Last-Modified`` to compare it to).
    When it does not hold, the whole current object is sent (200).
    """
    validator = request.headers.get("If-Range")
    if validator is not None and (validator.strip() != etag or etag.startswith("W/")):
        return None
    return request.headers.get("Range")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the first and last byte a ``Range`` header asks of a ``size``-byte object.

    As S3 and HTTP do: ``bytes=N-`` and ``bytes=N-M`` (``M`` capped at the end), ``bytes=-N``
    the last ``N`` bytes (all of them when the object is smaller); ``None`` (send the whole
    object, 200) for no header or one that is invalid (last before first, several ranges, not
    bytes); ``UNSATISFIABLE`` when the range starts past the end, or asks the last 0 bytes.
    """
    match = _RANGE.match(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    if match.group(1) == "":  # a suffix range
        suffix = int(match.group(2))
        return (max(0, size - suffix), size - 1) if suffix and size else UNSATISFIABLE
    first = int(match.group(1))
    if match.group(2) and int(match.group(2)) < first:  # invalid: HTTP ignores it
        return None
    last = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    return (first, last) if first < size else UNSATISFIABLE


def status_fault_response(fault: Fault) -> Response:
    """Return the S3-style answer of an injected ``storage_status`` fault.

    Params: ``status``, ``retry_after`` (seconds or an HTTP date) and ``headers`` (more
    response headers, e.g. a ``Set-Cookie`` to check the tap never sends it back).
    """
    status = int(fault.params.get("status", 503))
    code = STATUS_CODES.get(status, "InjectedFault")
    response = xml_error(status, code, f"injected {status} fault")
    retry_after = fault.params.get("retry_after")
    if retry_after is not None:
        is_number = isinstance(retry_after, (int, float))
        response.headers["Retry-After"] = str(int(retry_after)) if is_number else str(retry_after)
    for name, value in dict(fault.params.get("headers") or {}).items():
        response.headers[str(name)] = str(value)
    return response


def redirect_response(fault: Fault, url: str) -> Response:
    """Return the answer of an injected ``redirect`` fault: ``status`` to ``location``.

    Params: ``status`` (302 by default) and ``location`` (by default ``url``, the URL asked
    for: the same signed URL on this plain-http storage, served once the fault is used up).
    """
    status = int(fault.params.get("status", 302))
    code = "PermanentRedirect" if status in (301, 308) else "TemporaryRedirect"
    response = xml_error(status, code, "Please re-send this request to the specified endpoint.")
    response.headers["Location"] = str(fault.params.get("location") or url)
    return response
