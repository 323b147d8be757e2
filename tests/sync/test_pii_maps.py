"""Stream maps keep personal data in the tap: e-mail hashed, phone, address and birthday dropped."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

#: The README's stream map: hash the e-mail, drop the other personal columns.
DROPPED = (
    "phone_number",
    "birthday",
    "address_streetname",
    "address_housenumber",
    "address_housenumber_extension",
    "address_towncity",
    "address_regionstate",
    "address_postalcode",
)
MD5_MAP = {
    "users": {"username": "md5(username) if username else None"}
    | dict.fromkeys(DROPPED, "__NULL__")
}
SHA256_MAP = {
    "users": {"username": "sha256(username) if username else None"}
    | dict.fromkeys(DROPPED, "__NULL__")
}


def md5(text: str) -> str:
    """Hex MD5 of a text, as the SDK's ``md5()`` map function computes it."""
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - a pseudonym, not a password


def sha256(text: str) -> str:
    """Hex SHA-256 of a text, as the SDK's ``sha256()`` map function computes it."""
    return hashlib.sha256(text.encode()).hexdigest()


def assert_no_raw_pii(output: Any, sandbox: Sandbox) -> dict[int, dict[str, str]]:
    """No RECORD carries a sandbox user's e-mail or phone, and all users arrived.

    Returns:
        The sandbox users by id, as CSV text.
    """
    assert output.error is None
    source = {int(row["id"]): row for row in sandbox.users()}
    assert output.ids == set(source)
    records_text = json.dumps(
        [m for m in output.messages if m["type"] == "RECORD"], default=str
    ).lower()
    for row in source.values():
        assert "@" in row["username"], "the sandbox should give every user an e-mail"
        assert row["username"].lower() not in records_text, "a raw e-mail left the tap"
        if row["phone_number"]:
            assert row["phone_number"] not in records_text, "a phone number left the tap"
    return source


@pytest.mark.parametrize(("stream_maps", "digest"), [(MD5_MAP, md5), (SHA256_MAP, sha256)])
def test_stream_map_hashes_email_and_drops_phone_address_and_birthday(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    stream_maps: dict[str, Any],
    digest: Callable[[str], str],
) -> None:
    output = sync({**fast_config, "stream_maps": stream_maps})

    source = assert_no_raw_pii(output, small_sandbox)
    for record in output.records:
        original = source[record["id"]]
        assert record["username"] == digest(original["username"])
        assert not set(DROPPED) & set(record)
        assert record["first_name"] == (original["first_name"] or None)
    (schema,) = output.schemas
    assert not set(DROPPED) & set(schema["schema"]["properties"])
    assert schema["schema"]["properties"]["username"]["type"] == ["string", "null"]


def test_stream_map_with_flattening_enabled_still_leaks_nothing(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    config = {**fast_config, "stream_maps": MD5_MAP, "flattening_enabled": True,
              "flattening_max_depth": 1}  # fmt: skip

    output = sync(config)

    source = assert_no_raw_pii(output, small_sandbox)
    for record in output.records:
        assert record["username"] == md5(source[record["id"]]["username"])
        assert not set(DROPPED) & set(record)


def test_allow_list_map_keeps_only_the_named_columns(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    keep = {"id": "id", "created_date": "created_date", "loyalty_status_name":
            "loyalty_status_name", "__else__": "__NULL__"}  # fmt: skip

    output = sync({**fast_config, "stream_maps": {"users": keep}})

    assert_no_raw_pii(output, small_sandbox)
    assert {frozenset(record) for record in output.records} == {
        frozenset({"id", "created_date", "loyalty_status_name"})
    }
    assert output.bookmark == max(r["created_date"] for r in output.records)
