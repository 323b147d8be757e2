"""How the tap talks to the Spaaza Services API: auth, timeouts, retries, errors, task calls."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import backoff
import requests

from tap_spaaza_users.api.answers import (
    content_kind,
    decode_json,
    describe_error_body,
    nothing_listens,
    was_refused,
)
from tap_spaaza_users.api.request_metrics import log_request_duration
from tap_spaaza_users.api.retries import parse_retry_after, retry_waits
from tap_spaaza_users.errors import (
    SpaazaAPIError,
    SpaazaAuthError,
    SpaazaBadRequestError,
    SpaazaForbiddenError,
    SpaazaNotFoundError,
    SpaazaUncertainError,
)

if TYPE_CHECKING:
    import logging

#: The production Services API.
DEFAULT_API_URL = "https://services-prod.spaaza.com"

#: Statuses worth another try: rate limiting and transient server faults.
RETRYABLE_STATUSES = frozenset(
    {
        HTTPStatus.TOO_MANY_REQUESTS,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        HTTPStatus.BAD_GATEWAY,
        HTTPStatus.SERVICE_UNAVAILABLE,
        HTTPStatus.GATEWAY_TIMEOUT,
    }
)

#: Secrets shorter than this are not scrubbed from messages (they would mangle plain words).
MIN_SCRUBBED_LENGTH = 6


@dataclass(frozen=True)
class ClientSettings:
    """Everything the client needs to know (``export.make_client`` takes it from the settings)."""

    api_url: str
    chain_id: int
    token_id: str
    token_secret: str
    user_agent: str
    timeout: float
    max_retries: int
    retry_initial_wait: float
    retry_max_wait: float


class _RetryableError(Exception):
    """A failed attempt that may succeed if tried again."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        retry_after: float | None,
        refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        #: The connection was refused: the request never reached a server.
        self.refused = refused

    @property
    def safe_to_repeat(self) -> bool:
        """Whether the request surely was not carried out (a 429, a refused connection)."""
        return self.refused or self.status == HTTPStatus.TOO_MANY_REQUESTS


class SpaazaClient:
    """A small client for the Tasks API; one ``requests`` session that carries the token.

    The session is used for the Services API host only: the export file is fetched by
    ``download/fetch.py`` with its own credential-free session.
    """

    def __init__(self, settings: ClientSettings, logger: logging.Logger) -> None:
        """Prepare the authenticated session.

        Args:
            settings: Connection settings.
            logger: Where retries are logged.
        """
        self.settings = settings
        self.logger = logger
        self.base_url = settings.api_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {settings.token_id}:{settings.token_secret}",
                "User-Agent": settings.user_agent,
                "Accept": "application/json",
            }
        )
        self._rate_limit_logged = False

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    # Task calls

    def create_task(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /tasks``: create a task (201, tolerating 200), never blindly twice.

        ``POST /tasks`` is not idempotent: a 5xx, a timeout or a dropped connection may come
        after the task was created. Only a 429 (not carried out) is retried here; the other
        faults raise ``SpaazaUncertainError`` so the caller can look for the task first.

        Args:
            body: The task body.

        Returns:
            The created task.
        """
        return self._json(self.request("POST", "/tasks", json=body, idempotent=False))

    def get_task(self, task_id: int, *, log_limit: int | None = None) -> dict[str, Any]:
        """``GET /tasks/{id}``: the task and its state.

        Args:
            task_id: The task id.
            log_limit: How many log entries to include (the server defaults to 10).

        Returns:
            The task.
        """
        params = {"log_limit": log_limit} if log_limit else None
        return self._json(self.request("GET", f"/tasks/{task_id}", params=params))

    def list_tasks(
        self, *, limit: int = 1, offset: int = 0, action: str | None = None
    ) -> list[Any]:
        """``GET /tasks?limit=N``: a page of the chain's tasks, newest first.

        Args:
            limit: How many tasks to list.
            offset: How many to skip (paging).
            action: Only tasks of this ``target.action`` (e.g. ``export``).

        Returns:
            The tasks.

        Raises:
            SpaazaAPIError: If the answer is not a list.
        """
        params: dict[str, Any] = {"limit": limit}
        if offset:
            params["offset"] = offset
        if action:
            params["action"] = action
        response = self.request("GET", "/tasks", params=params)
        answer = decode_json(response)
        if not isinstance(answer, list):
            msg = (
                f"GET /tasks did not answer with a list of tasks (HTTP {response.status_code}, "
                f"{content_kind(response)}); is api_url the Services API?"
            )
            raise SpaazaAPIError(msg, status=response.status_code)
        return answer

    def delete_task(self, task_id: int) -> None:
        """``DELETE /tasks/{id}``.

        Args:
            task_id: The task id.
        """
        self.request("DELETE", f"/tasks/{task_id}")

    def download_url(self, task_id: int) -> str:
        """``GET /tasks/{id}/download_url``: a fresh pre-signed URL of the export file.

        Args:
            task_id: The task id (in DONE).

        Returns:
            The URL.

        Raises:
            SpaazaAPIError: If the answer carries no URL.
        """
        answer = self._json(self.request("GET", f"/tasks/{task_id}/download_url"))
        url = answer.get("url")
        if not isinstance(url, str) or not url:
            msg = f"GET /tasks/{task_id}/download_url answered without a url"
            raise SpaazaAPIError(msg)
        return url

    # Plumbing

    def request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> requests.Response:
        """Send one API call, retrying transient faults, and map errors to our types.

        Args:
            method: HTTP method.
            path: Path under ``api_url``, starting with ``/``.
            json: JSON body, if any.
            params: Query parameters, if any.
            idempotent: False for a call that must not be repeated blindly: only a 429 is
                retried, other transient faults raise ``SpaazaUncertainError``.

        Returns:
            The successful response.

        Raises:
            SpaazaAPIError: When the API answers an error, or retries run out.
            SpaazaUncertainError: When a call that is not idempotent may have been carried out.
        """
        retrying = backoff.on_exception(
            retry_waits,
            _RetryableError,
            max_tries=self.settings.max_retries + 1,
            jitter=None,
            giveup=lambda exc: not idempotent and not exc.safe_to_repeat,
            on_backoff=self._log_backoff,
            logger=None,
            initial=self.settings.retry_initial_wait,
            cap=self.settings.retry_max_wait,
        )(self._attempt)
        try:
            return retrying(method, path, json=json, params=params)
        except _RetryableError as exc:
            if not idempotent and not exc.safe_to_repeat:
                msg = f"{method} {path} got no clear answer ({exc}); it may have been carried out"
                raise SpaazaUncertainError(self.scrub(msg), status=exc.status) from None
            tries = self.settings.max_retries + 1
            if exc.refused:
                msg = (
                    f"{method} {path} failed after {tries} tries: {nothing_listens(self.base_url)}"
                )
                raise SpaazaAPIError(msg, status=None) from None
            msg = (
                f"{method} {path} failed after {tries} tries: {exc}. The Services API at "
                f"{self.base_url} is unavailable or rate limiting; try again later, or raise "
                "max_retries / retry_max_wait_seconds."
            )
            raise SpaazaAPIError(self.scrub(msg), status=exc.status) from None

    def scrub(self, text: str) -> str:
        """Blank out both parts of the token should any text echo them (an error body may).

        The id is a declared secret too; it is matched in any case (a UUID may be echoed in
        upper case).

        Args:
            text: A message about to be logged or raised.

        Returns:
            The text without the token's id and secret.
        """
        for part in (self.settings.token_secret, self.settings.token_id):
            # A part too short to be a real one would blank out ordinary words instead.
            if len(part or "") >= MIN_SCRUBBED_LENGTH:
                text = re.sub(re.escape(part), "***", text, flags=re.IGNORECASE)
        return text

    def _attempt(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None,
        params: dict[str, Any] | None,
    ) -> requests.Response:
        """Send one attempt; raise ``_RetryableError`` for faults worth retrying."""
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                timeout=self.settings.timeout,
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            log_request_duration(method, path, None, time.perf_counter() - started)
            refused = was_refused(exc)
            what = "connection refused" if refused else type(exc).__name__
            msg = f"{what} talking to {self.base_url}"
            raise _RetryableError(msg, status=None, retry_after=None, refused=refused) from None
        log_request_duration(method, path, response.status_code, time.perf_counter() - started)
        if response.status_code in RETRYABLE_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            msg = self.scrub(f"HTTP {response.status_code}{describe_error_body(response)}")
            raise _RetryableError(
                msg,
                status=response.status_code,
                retry_after=retry_after,
            )
        if response.status_code >= HTTPStatus.MULTIPLE_CHOICES:
            raise self._error_for(method, path, response)
        return response

    def _log_backoff(self, details: Any) -> None:  # noqa: ANN401
        """Log a retry: a 429 once at INFO, other faults at WARNING."""
        exc = details.get("exception")
        wait = details.get("wait", 0.0)
        if getattr(exc, "status", None) == HTTPStatus.TOO_MANY_REQUESTS:
            if not self._rate_limit_logged:
                self.logger.info("Rate limited by the Services API; waiting %.1fs as told", wait)
                self._rate_limit_logged = True
            return
        self.logger.warning(
            "Services API call failed (%s); retry %d of %d in %.2fs",
            exc,
            details.get("tries", 0),
            self.settings.max_retries,
            wait,
        )

    def _error_for(self, method: str, path: str, response: requests.Response) -> SpaazaAPIError:
        """Turn a non-retryable error answer into one clear error."""
        status = response.status_code
        where = self.scrub(f"{method} {path} → HTTP {status}{describe_error_body(response)}")
        chain = self.settings.chain_id
        if status == HTTPStatus.UNAUTHORIZED:
            return SpaazaAuthError(
                f"Spaaza rejected the access token ({where}). Check access_token_id and "
                "access_token_secret: both come from the same AccessToken in Spaaza Console.",
                status=status,
            )
        if status == HTTPStatus.FORBIDDEN:
            return SpaazaForbiddenError(
                f"The access token is not allowed to act for chain {chain} ({where}). Check "
                "chain_id, or use a token issued for that chain.",
                status=status,
            )
        if status == HTTPStatus.NOT_FOUND:
            return SpaazaNotFoundError(
                f"Not found ({where}): the task is gone (deleted, or it belongs to another "
                f"chain than {chain}), or api_url is not the Services API.",
                status=status,
            )
        if status == HTTPStatus.BAD_REQUEST:
            return SpaazaBadRequestError(
                f"Spaaza rejected the request ({where}). Check segment_rules and start_date.",
                status=status,
            )
        return SpaazaAPIError(f"Unexpected answer from the Services API ({where}).", status=status)

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        """Decode a JSON object answer."""
        answer = decode_json(response)
        if not isinstance(answer, dict):
            msg = (
                f"{response.request.method} {_path_of(response)} did not answer with a JSON "
                f"object (HTTP {response.status_code}, {content_kind(response)}); is api_url "
                "the Services API?"
            )
            raise SpaazaAPIError(msg, status=response.status_code)
        return answer


def _path_of(response: requests.Response) -> str:
    """The request's path, without query string."""
    return urlsplit(response.url).path or "/"
