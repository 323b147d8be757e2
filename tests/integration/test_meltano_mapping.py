"""Stream maps and flattening through Meltano: PII hashed or dropped, nested objects flattened."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, cast

import yaml

from .conftest import PROJECT_ROOT, read_jsonl

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

    from .conftest import Meltano

PII_DROPPED = (
    "phone_number",
    "address_streetname",
    "address_housenumber",
    "address_housenumber_extension",
    "address_towncity",
    "address_regionstate",
    "address_postalcode",
)


def meltano_yml_pii_example() -> dict[str, Any]:
    """Return the commented `stream_maps` example of meltano.yml, uncommented and parsed."""
    lines = (PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# stream_maps:")
    indent = lines[start].index("#")
    block = []
    for line in lines[start:]:
        if not line.strip().startswith("#"):
            break
        block.append(line[indent + 2 :])
    return cast("dict[str, Any]", yaml.safe_load("\n".join(block))["stream_maps"])


def test_meltano_yml_stream_map_example_hashes_email_and_drops_phone_and_address(
    meltano: Meltano, sandbox: Sandbox, tmp_path: Path
) -> None:
    stream_maps = meltano_yml_pii_example()
    assert set(PII_DROPPED) <= set(stream_maps["users"]), "the example must drop all PII"
    meltano.use_sandbox(sandbox)
    meltano.env["TAP_SPAAZA_USERS_STREAM_MAPS"] = json.dumps(stream_maps)

    meltano("run", "tap-spaaza-users", "target-jsonl")

    output = tmp_path / "jsonl" / "users.jsonl"
    text = output.read_text(encoding="utf-8")
    source = {int(user["id"]): user for user in sandbox.users()}
    records = read_jsonl(output)
    assert len(records) == len(source)
    for record in records:
        original = source[record["id"]]
        assert original["username"], "the sandbox should give every user an e-mail"
        assert original["username"] not in text, "a raw e-mail reached the target"
        assert record["username"] == hashlib.md5(original["username"].encode()).hexdigest()  # noqa: S324
        assert not set(PII_DROPPED) & set(record), "a phone or address column reached the target"
        assert record["first_name"] == original["first_name"], "other columns must be untouched"


def test_flattening_turns_a_nested_object_into_columns(
    meltano: Meltano, sandbox: Sandbox, tmp_path: Path
) -> None:
    meltano.use_sandbox(sandbox)
    meltano.env["TAP_SPAAZA_USERS_STREAM_MAPS"] = json.dumps(
        {"users": {"id": "id", "profile": "record", "__else__": "__NULL__"}}
    )
    meltano.env["TAP_SPAAZA_USERS_FLATTENING_ENABLED"] = "true"
    meltano.env["TAP_SPAAZA_USERS_FLATTENING_MAX_DEPTH"] = "1"

    meltano("run", "tap-spaaza-users", "target-jsonl")

    records = read_jsonl(tmp_path / "jsonl" / "users.jsonl")
    source = {int(user["id"]): user for user in sandbox.users()}
    assert len(records) == len(source)
    for record in records:
        assert "profile" not in record
        assert record["profile__id"] == record["id"]
        assert record["profile__username"] == source[record["id"]]["username"]
        assert "username" not in record
