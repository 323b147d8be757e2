"""The ``Sandbox``: a local Spaaza Services API and storage endpoint, as a context manager."""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.sandbox.app import ApiApp, Token
from tap_spaaza_users.sandbox.clock import SandboxClock
from tap_spaaza_users.sandbox.control import ControlApp
from tap_spaaza_users.sandbox.export import CsvDialect
from tap_spaaza_users.sandbox.faults import FaultStore, make_fault
from tap_spaaza_users.sandbox.lifecycle import Engine, Timing
from tap_spaaza_users.sandbox.lines import as_values
from tap_spaaza_users.sandbox.options import SandboxOptions
from tap_spaaza_users.sandbox.population import Population
from tap_spaaza_users.sandbox.recording import RequestLog
from tap_spaaza_users.sandbox.server import RecordingApp, ServerThread
from tap_spaaza_users.sandbox.storage import Signer, StorageApp

if TYPE_CHECKING:
    from types import TracebackType

    from werkzeug.wrappers import Request, Response

    from tap_spaaza_users.sandbox.recording import RecordedRequest
    from tap_spaaza_users.sandbox.tasks import Task
    from tap_spaaza_users.sandbox.validation import SavedSegment

LOGGER = logging.getLogger(__name__)
CONTROL_PREFIX = "/_sandbox"


class Sandbox:
    """A running Spaaza sandbox: Services API + storage on two local ports, over synthetic users."""

    def __init__(  # noqa: PLR0913, PLR0917 - the documented signature
        self,
        users: int = 1000,
        seed: int = 1,
        url_ttl_seconds: float = 3600,
        index_lag_seconds: float = 0,
        task_base_seconds: float = 0.0,
        task_seconds_per_1k_users: float = 0.0,
        *,
        now: datetime | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_port: int = 0,
        chain_id: int = 1234,
        other_chain_id: int = 5678,
        state_code_case: str = "upper",
        storage_bytes_per_second: float | None = None,
    ) -> None:
        """Prepare the sandbox; entering the context (or ``start``) binds and serves."""
        self._initial_options = SandboxOptions(
            state_code_case=state_code_case,
            storage_bytes_per_second=storage_bytes_per_second,
            task_base_seconds=task_base_seconds,
            task_seconds_per_1k_users=task_seconds_per_1k_users,
        )
        self.options = self._initial_options
        self.clock = SandboxClock(now)
        self.seed = seed
        self.chain_id, self.other_chain_id = chain_id, other_chain_id
        self.token_id, self.token_secret = _demo_token(seed, chain_id)
        self.other_token_id, self.other_token_secret = _demo_token(seed, other_chain_id)
        self.population = Population(
            seed=seed,
            count=users,
            epoch=int(self.clock.now().timestamp()),
            index_lag_seconds=index_lag_seconds,
        )
        self.faults = FaultStore()
        self.request_log = RequestLog()
        self._workdir = Path(tempfile.mkdtemp(prefix="spaaza-sandbox-"))
        self.engine = Engine(
            clock=self.clock,
            population=self.population,
            faults=self.faults,
            workdir=self._workdir,
            timing=Timing(task_base_seconds, task_seconds_per_1k_users),
            seed=seed,
        )
        self.signer = Signer(self.clock, url_ttl_seconds)
        tokens = {
            self.token_id: Token(self.token_secret, chain_id),
            self.other_token_id: Token(self.other_token_secret, other_chain_id),
        }
        self._api = ApiApp(
            self.engine,
            self.signer,
            self.faults,
            tokens,
            lambda: self.storage_url,
            lambda: self.options,
        )
        self._control = ControlApp(self)
        storage = StorageApp(self.signer, self.faults, self.engine.store.get, lambda: self.options)
        try:  # a port in use: leave no work directory (nor a bound port) behind
            self._api_server = ServerThread(
                RecordingApp("api", self._route, self.request_log, CONTROL_PREFIX), host, port
            )
            try:
                self._storage_server = ServerThread(
                    RecordingApp("storage", storage.respond, self.request_log), host, storage_port
                )
            except BaseException:
                self._api_server.stop()
                raise
        except BaseException:
            self.population.rendered.close()
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise
        self._started = False

    def _route(self, request: Request) -> Response:
        """Send ``/_sandbox`` to the control app, the rest to the emulated API."""
        if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
            return self._control.respond(request)
        return self._api.respond(request)

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Serve the API and storage and run the task scheduler."""
        if not self._started:
            self._api_server.start()
            self._storage_server.start()
            self.engine.start()
            self._started = True
            LOGGER.info("Spaaza sandbox serving at %s (storage %s)", self.url, self.storage_url)
        return self

    def stop(self) -> None:
        """Stop serving and delete every export file."""
        self.engine.stop()
        self._api_server.stop()
        self._storage_server.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)
        self._started = False

    def __enter__(self) -> Sandbox:  # noqa: PYI034 - Self needs Python 3.11
        """Start the sandbox."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the sandbox."""
        self.stop()

    # addresses and credentials -------------------------------------------------------------
    @property
    def url(self) -> str:
        """Return the Services API base URL."""
        return self._api_server.url

    @property
    def api_app(self) -> RecordingApp:
        """The WSGI app the API port serves (a front for several chains calls it too)."""
        return cast("RecordingApp", self._api_server.server.app)

    @property
    def storage_url(self) -> str:
        """Return the storage endpoint's base URL (a separate port)."""
        return self._storage_server.url

    def tap_config(self, **overrides: object) -> dict[str, Any]:
        """Return a tap config pointing at this sandbox, with fast polling, plus ``overrides``."""
        config: dict[str, Any] = {
            "api_url": self.url,
            "chain_id": self.chain_id,
            "access_token_id": self.token_id,
            "access_token_secret": self.token_secret,
            "poll_interval_seconds": 0.05,
            "poll_max_interval_seconds": 0.2,
        }
        return config | overrides

    def describe(self) -> dict[str, Any]:
        """Return url, storage_url, chain id and demo credentials (what the CLI prints)."""
        return {
            "url": self.url,
            "storage_url": self.storage_url,
            "chain_id": self.chain_id,
            "token_id": self.token_id,
            "token_secret": self.token_secret,
        }

    # users ---------------------------------------------------------------------------------
    def add_users(
        self,
        n: int,
        created_date: datetime | None = None,
        visible_after_seconds: float | None = None,
    ) -> list[int]:
        """Add ``n`` users created at ``created_date`` (default: clock now); return their ids."""
        now = self.clock.now()
        return self.population.add(n, created_date or now, now, visible_after_seconds)

    def update_user(self, user_id: int, **fields: object) -> None:
        """Change columns of a user (Python values or CSV text)."""
        self.population.update(user_id, fields)

    def delete_user(self, user_id: int) -> None:
        """Delete a user."""
        self.population.delete(user_id)

    def users(
        self,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
    ) -> list[dict[str, str]]:
        """Return the CSV values of the users an export would hold now (strict bounds)."""
        now = self.clock.now()
        after = _as_datetime(created_after)
        before = _as_datetime(created_before)
        selected = []
        for item in self.population.rows(self.population.snapshot(), now):
            row = as_values(item)
            created = parse_utc(row["created_date"])
            if (after is None or created > after) and (before is None or created < before):
                selected.append(row)
        return selected

    def user_count(self) -> int:
        """Return how many users an unfiltered export would hold now."""
        return self.population.count(self.clock.now())

    # inspection and faults -----------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Return every request the API and storage answered (not ``/_sandbox``)."""
        return self.request_log.all()

    @property
    def tasks(self) -> dict[int, Task]:
        """Return the tasks by id."""
        return self.engine.store.all()

    def backdate_task(self, task_id: int, created_date: datetime) -> Task:
        """Say a task was created at ``created_date`` (e.g. hours ago, left by a killed run).

        Only ``state.created_date`` changes; the task goes on as it was (a task kept
        ``READY`` or ``INPROGRESS``, by a future ``once`` or ``task_stuck``, stays so).

        Raises:
            LookupError: When there is no such task.
        """
        task = self.engine.store.get(task_id)
        if task is None:
            msg = f"no task {task_id}"
            raise LookupError(msg)
        with self.engine.store.lock:
            task.created_date = created_date
        return task

    @property
    def saved_segments(self) -> dict[int, SavedSegment]:
        """Return the saved segments usable as ``trigger.segment_id``."""
        return dict(self.engine.saved_segments)

    def inject(self, kind: str, **params: object) -> None:
        """Arm a fault (``times``, ``method``, ``path`` scope it; the rest are its parameters)."""
        self.faults.add(make_fault(kind, params))

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self.faults.clear()

    def set_csv_dialect(self, **options: object) -> None:
        """Write later exports in a dialect variant (persistent until ``reset``)."""
        self.engine.dialect = CsvDialect(**{**self.engine.dialect.describe(), **options})

    def reset_csv_dialect(self) -> None:
        """Write later exports in the default dialect again."""
        self.engine.dialect = CsvDialect()

    def set_options(self, **changes: object) -> None:
        """Change sandbox-wide options (``state_code_case``, ``storage_bytes_per_second``, ...)."""
        self.options = self.options.updated(**changes)
        self.engine.timing = Timing(
            self.options.task_base_seconds, self.options.task_seconds_per_1k_users
        )

    def reset_options(self) -> None:
        """Restore the options the sandbox was started with."""
        self.set_options(**self._initial_options.describe())

    def reset(self) -> None:
        """Forget faults, recorded requests, tasks, the dialect variant and changed options."""
        self.faults.clear()
        self.request_log.clear()
        self.engine.reset()
        self.reset_options()


def _demo_token(seed: int, chain_id: int) -> tuple[str, str]:
    """Return a deterministic demo token (UUID id, opaque secret) for a chain."""
    token_id = uuid.uuid5(uuid.NAMESPACE_URL, f"spaaza-sandbox/{seed}/{chain_id}")
    secret = uuid.uuid5(token_id, "secret").hex
    return str(token_id), f"sbx_{secret}"


def _as_datetime(value: datetime | str | None) -> datetime | None:
    """Accept a datetime or its text."""
    if value is None or isinstance(value, datetime):
        return None if value is None else parse_utc(value.isoformat())
    return parse_utc(value)
