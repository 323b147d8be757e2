"""BATCH files are personal data: their storage proven before any request, and deleted once loaded.

Before the tap asks Spaaza for anything, the ``batch_config`` root is opened and written (a
file written and deleted), so an ``s3://`` root without ``s3fs``, a read-only folder or a
missing bucket is one line, not a failure after the export task was created.

The delivered-task rule applies to the files too. Each STATE after BATCH messages names the
files announced before it (``delivered_batch_files`` in the users stream's state); a target
saves that STATE only once it has loaded them, so the next sync, given it, deletes them.
``keep_batch_files`` turns this off, for targets that load the files later.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from upath import UPath

from tap_spaaza_users.errors import SpaazaConfigError

if TYPE_CHECKING:
    import logging
    from collections.abc import Mapping

#: The key of the users stream's state that names the files announced and not yet deleted.
STATE_KEY = "delivered_batch_files"
#: The extra that brings ``s3fs`` (and what other fsspec protocols need, by the same name).
EXTRAS = {"s3": "s3", "s3a": "s3"}


def storage_of(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The ``batch_config`` root and its storage parameters, or None without BATCH output."""
    batch = config.get("batch_config")
    if not isinstance(batch, dict) or not isinstance(batch.get("storage"), dict):
        return None
    storage = batch["storage"]
    root = storage.get("root")
    if not isinstance(root, str) or not root:
        return None
    params = storage.get("params")
    return root, dict(params) if isinstance(params, dict) else {}


def check_storage(config: Mapping[str, Any]) -> None:
    """Open the BATCH root and write (then delete) a small file in it.

    Args:
        config: The tap's settings.

    Raises:
        SpaazaConfigError: Naming the root, what failed and what to do.
    """
    storage = storage_of(config)
    if storage is None:
        return
    root, params = storage
    protocol = root.partition("://")[0] if "://" in root else "file"
    try:
        folder = UPath(root, **params)
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".tap-spaaza-users-check-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except ImportError as exc:
        extra = EXTRAS.get(protocol, protocol)
        msg = (
            f"Setting batch_config.storage.root is a {protocol}:// URL, which needs a library "
            f"that is not installed ({exc}): install the tap with its {extra} extra, e.g. "
            f"pip install 'tap-spaaza-users[{extra}]' (in meltano.yml, add {extra} to the "
            "pip_url's extras)"
        )
        raise SpaazaConfigError(msg) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        msg = (
            f"Setting batch_config.storage.root ({root}) cannot be written ({reason}): give a "
            "folder or bucket the tap may write to, checked before any request to Spaaza"
        )
        raise SpaazaConfigError(msg) from None


def announced(stream_state: dict[str, Any], urls: list[str]) -> None:
    """Name files just announced in BATCH messages in the state the next STATE carries."""
    named = stream_state.get(STATE_KEY)
    stream_state[STATE_KEY] = [*(named if isinstance(named, list) else []), *urls]


def delete_delivered(
    stream_state: dict[str, Any], config: Mapping[str, Any], logger: logging.Logger
) -> None:
    """Delete the files the input state names (they were loaded), unless kept by setting.

    A file that cannot be deleted is named in a warning and stays in the state, so the next
    sync tries again; one already gone counts as deleted.

    Args:
        stream_state: The users stream's state (the input state, before the sync).
        config: The tap's settings.
        logger: Where the deletions are reported.
    """
    named = stream_state.get(STATE_KEY)
    if not isinstance(named, list) or not named or config.get("keep_batch_files"):
        return
    storage = storage_of(config)
    params = storage[1] if storage is not None else {}
    left: list[str] = []
    for url in named:
        if not isinstance(url, str):
            continue
        try:
            UPath(url, **params).unlink(missing_ok=True)
        except (OSError, ImportError, ValueError) as exc:
            logger.warning("Could not delete the loaded BATCH file %s (%s); the next sync "
                           "tries again", url, exc)  # fmt: skip
            left.append(url)
    logger.info(
        "Deleted %d BATCH file(s) the previous sync's state proves loaded (keep_batch_files "
        "keeps them)",
        len(named) - len(left),
    )
    if left:
        stream_state[STATE_KEY] = left
    else:
        stream_state.pop(STATE_KEY, None)
