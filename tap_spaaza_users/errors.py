"""Error types of the tap: raised where the fact is known, shown as one clear line at the edge."""

from __future__ import annotations

from typing import NoReturn


class SpaazaError(Exception):
    """Base of every error this tap raises on purpose; its message is written for the user."""


class SpaazaConfigError(SpaazaError):
    """A setting is missing or invalid; raised before any network call."""


def invalid_setting(name: str, problem: str) -> NoReturn:
    """Raise the error for setting ``name``: ``Setting <name> <problem>.``.

    Args:
        name: The setting.
        problem: What is wrong and how to fix it.

    Raises:
        SpaazaConfigError: Always.
    """
    msg = f"Setting {name} {problem}."
    raise SpaazaConfigError(msg)


class SpaazaStateError(SpaazaError):
    """The input state is unreadable, malformed or another chain's; raised before any request."""


class SpaazaAPIError(SpaazaError):
    """The Services API answered with an error the tap cannot recover from."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        """Keep the HTTP status next to the message."""
        super().__init__(message)
        self.status = status


class SpaazaUncertainError(SpaazaAPIError):
    """A request that is not safe to repeat got no clear answer: it may have been carried out."""


class SpaazaAuthError(SpaazaAPIError):
    """401: the access token id or secret is wrong or malformed."""


class SpaazaForbiddenError(SpaazaAPIError):
    """403: the token is valid but not scoped to the configured chain."""


class SpaazaNotFoundError(SpaazaAPIError):
    """404: the task (or resource) does not exist for this chain."""


class SpaazaBadRequestError(SpaazaAPIError):
    """400: Spaaza rejected the request body (e.g. a segment rule)."""


class SpaazaTaskFailedError(SpaazaError):
    """The export task ended in ERROR."""


class SpaazaTaskTimeoutError(SpaazaError):
    """The export task did not finish within task_timeout_minutes."""


class SpaazaFullRefreshRefusedError(SpaazaError):
    """A full refresh was delivered but refused its ACTIVATE_VERSION (empty or shrunken)."""


class SpaazaDownloadError(SpaazaError):
    """The export file could not be downloaded from storage."""


class SpaazaInvalidRowError(SpaazaError):
    """A CSV row of the export could not be parsed or typed."""


class SpaazaFileUnobtainableError(SpaazaDownloadError):
    """The export file is gone for good (storage 404, download_url 404 or 410): never retried."""


class SpaazaCorruptExportError(SpaazaDownloadError):
    """The export file arrived whole but is not what storage holds, or not valid gzip."""


class SpaazaLocalIOError(SpaazaError):
    """Writing or reading the export file on local disk failed (a full disk, a removed dir)."""


def local_io_error(exc: OSError, doing: str, where: str, task_id: int | None) -> SpaazaLocalIOError:
    """The one-line error of a local I/O failure: what failed, where, and what to do.

    Args:
        exc: The failure.
        doing: What the tap was doing (``writing the export file``).
        where: The directory or file concerned.
        task_id: The export task, kept for the next run.

    Returns:
        The error to raise.
    """
    reason = exc.strerror or type(exc).__name__
    task = f"export task {task_id} is kept and" if task_id is not None else "the export is"
    return SpaazaLocalIOError(
        f"Local I/O failed {doing} in {where} ({reason}): make sure that directory exists and "
        f"has free space (or point TMPDIR at one that does), then run the sync again; "
        f"{task} reused by the next run"
    )
