"""A resumed download against storage that ignores Range, or whose object changed meanwhile.

The tap resumes a broken body with ``Range`` and ``If-Range`` (the file's ETag). Storage that
answers the whole file (200) instead, or a changed object (another ETag, so ``If-Range`` does
not hold), must still give every user exactly once.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.tap_cli import SyncOutput

    from tap_spaaza_users.sandbox import Sandbox
    from tap_spaaza_users.sandbox.recording import RecordedRequest


def storage_gets(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in sandbox.requests if r.server == "storage" and r.method == "GET"]


def assert_every_user_once(output: SyncOutput, sandbox: Sandbox) -> None:
    assert output.error is None, output.error
    ids = [record["id"] for record in output.records]
    assert len(ids) == len(set(ids)), "a record was emitted twice"
    assert set(ids) == {int(user["id"]) for user in sandbox.users()}
    assert output.bookmark is not None


def test_a_resume_answered_whole_by_storage_ignoring_range_gives_every_user_once(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    small_sandbox.inject("drop_connection", after_bytes=3000)
    small_sandbox.inject("ignore_range")

    output = sync(fast_config)

    assert_every_user_once(output, small_sandbox)
    gets = storage_gets(small_sandbox)
    # the resume is answered with the whole file (200), taken from its first byte
    assert [(r.headers.get("Range"), r.status) for r in gets] == [
        (None, 200), ("bytes=3000-", 200)
    ]  # fmt: skip
    assert small_sandbox.faults.armed() == []


def test_a_resume_of_an_object_replaced_meanwhile_gives_every_user_once(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    small_sandbox.inject("drop_connection", after_bytes=3000)
    small_sandbox.inject("object_replaced")

    output = sync(fast_config)

    assert_every_user_once(output, small_sandbox)
    gets = storage_gets(small_sandbox)
    # If-Range did not hold: the resume is answered with the whole new file (200)
    assert [(r.headers.get("Range"), r.status) for r in gets] == [
        (None, 200), ("bytes=3000-", 200)
    ]  # fmt: skip
    resume = gets[1]
    (task,) = small_sandbox.tasks.values()
    assert re.fullmatch(r'"[0-9a-f]{32}"', resume.headers["If-Range"])  # the first file's ETag
    assert resume.headers["If-Range"] != f'"{task.md5}"'  # ... which the replacement changed
    assert small_sandbox.faults.armed() == []
