"""Odd files, bad rows and bad settings, through the tap's command line against the sandbox."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import FAST_SETTINGS, CliRun, run_tap

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox


def by_id(run: CliRun) -> dict[int, dict[str, Any]]:
    """The run's records by id, checking none was emitted twice."""
    records = {int(r["id"]): r for r in run.records}
    assert len(records) == len(run.records)
    return records


# Dialects and odd values -------------------------------------------------------------------


def test_bom_crlf_numeric_booleans_and_iso_dates_read_like_the_plain_file(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    plain = run_tap(tmp_path, fast_config)
    small_sandbox.set_csv_dialect(bom=True, crlf=True, booleans="1_0", datetimes="iso_z")

    variant = run_tap(tmp_path, fast_config)

    assert plain.returncode == variant.returncode == 0, variant.stderr
    assert by_id(variant) == by_id(plain)
    assert len(by_id(variant)) == len(small_sandbox.users())
    assert any(r["is_employee"] is not None for r in variant.records)
    assert "\ufeff" not in variant.stdout


def test_nul_bytes_and_a_one_megabyte_field_come_through_intact(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    (user_id,) = small_sandbox.add_users(1)
    huge = "Lange Straße " + "x" * 1_000_000
    small_sandbox.update_user(user_id, first_name="Nul\x00In\x00Name", address_streetname=huge)

    run = run_tap(tmp_path, fast_config)

    assert run.returncode == 0, run.stderr
    record = by_id(run)[user_id]
    assert record["first_name"] == "Nul\x00In\x00Name"
    assert record["address_streetname"] == huge
    assert len(by_id(run)) == len(small_sandbox.users())


# Repeated users and odd task states --------------------------------------------------------


def test_a_user_repeated_in_the_file_is_emitted_again_so_the_newer_copy_wins(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject("duplicate_rows", times=1, count=5, newer_by_seconds=3600)

    run = run_tap(tmp_path, fast_config)

    assert run.returncode == 0, run.stderr
    assert run.error_lines == []
    records = run.records
    ids = [int(r["id"]) for r in records]
    repeated = {user_id for user_id in ids if ids.count(user_id) == 2}
    assert len(repeated) == 5
    assert len(ids) == len(small_sandbox.users()) + 5
    assert set(ids) == {int(user["id"]) for user in small_sandbox.users()}
    kept = {int(r["id"]): r for r in records}  # what a target upserting by key keeps
    for user_id in repeated:
        older, newer = [r for r in records if r["id"] == user_id]
        assert newer["last_modified_date"] > older["last_modified_date"]
        assert kept[user_id] == newer
    (summary,) = run.lines_with("repeated in the file")
    assert f"Emitted {len(ids)} users" in summary
    assert "5 of them repeated in the file" in summary
    assert run.states[-1]["bookmarks"]["users"]["replication_key_value"] == max(
        r["created_date"] for r in run.records
    )


def test_task_states_in_lower_case_are_read_like_the_contracts_upper_case(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.set_options(state_code_case="lower")

    run = run_tap(tmp_path, {**fast_config, "task_timeout_minutes": 0.2})

    assert run.returncode == 0, run.stderr
    assert len(by_id(run)) == len(small_sandbox.users())
    assert run.lines_with("is DONE")
    assert run.states[-1]["bookmarks"]["users"]["replication_key_value"] == max(
        r["created_date"] for r in run.records
    )


# Malformed rows ----------------------------------------------------------------------------


def test_malformed_row_fails_naming_task_line_column_and_value(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject("malformed_rows", rows=[3], problem="bad_value", column="overall")

    run = run_tap(tmp_path, fast_config)

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (task_id,) = small_sandbox.tasks
    error = run.error
    assert f"Export task {task_id}, line 4" in error
    assert "'overall'" in error
    assert "not-a-number" in error
    assert "on_invalid_row" in error


def test_row_with_a_missing_field_fails_naming_its_line(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # Row 5's line depends on the population (a quoted value may span lines); here it is 6.
    sb = sandbox_factory(users=40, seed=13)
    sb.inject("malformed_rows", rows=[5], problem="field_count")

    run = run_tap(tmp_path, sb.tap_config(**FAST_SETTINGS))

    assert run.returncode == 1
    (task_id,) = sb.tasks
    assert re.search(rf"Export task {task_id}, line 6: expected \d+ fields, found \d+", run.error)


def test_skipped_rows_are_each_logged_and_counted_at_the_end(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject("malformed_rows", rows=[2, 7], problem="bad_value", column="birthday")

    run = run_tap(tmp_path, {**fast_config, "on_invalid_row": "skip"})

    assert run.returncode == 0, run.stderr
    assert len(by_id(run)) == len(small_sandbox.users()) - 2
    skipped = run.lines_with("row skipped")
    assert len(skipped) == 2
    assert all("WARNING" in line and "'birthday'" in line for line in skipped)
    (summary,) = run.lines_with("invalid rows skipped")
    assert "2 invalid rows skipped" in summary


# Unknown and missing columns ---------------------------------------------------------------


def test_unknown_columns_are_declared_before_the_first_record_and_missing_ones_are_null(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.set_csv_dialect(
        extra_columns=["store_cluster"], missing_columns=["gender"], column_order="shuffled"
    )

    run = run_tap(tmp_path, fast_config)

    assert run.returncode == 0, run.stderr
    kinds = [m["type"] for m in run.messages]
    first_record = kinds.index("RECORD")
    schemas = [i for i, kind in enumerate(kinds) if kind == "SCHEMA"]
    assert max(schemas) < first_record
    schema = run.messages[max(schemas)]["schema"]["properties"]
    assert schema["store_cluster"]["type"] == ["string", "null"]
    assert all(isinstance(r["store_cluster"], str) for r in run.records)
    assert all(r["gender"] is None for r in run.records)
    assert len(run.lines_with("'store_cluster' is not a known users column")) == 1
    assert len(run.lines_with("'gender' is missing from the file")) == 1


# Invalid settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"access_token_secret": None}, "access_token_secret"),
        ({"access_token_id": ""}, "Setting access_token_id"),
        ({"chain_id": "12x"}, "Setting chain_id must be a positive integer"),
        ({"start_date": "last tuesday"}, "Setting start_date must be an ISO 8601 date-time"),
        (
            {"segment_rules": [{"field_name": "gender", "field_type": "keyword", "operator": "~"}]},
            "segment_rules[0].operator",
        ),
        ({"api_url": "http://services-prod.spaaza.com"}, "Setting api_url must use https"),
    ],
)
def test_invalid_settings_fail_before_any_request(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    override: dict[str, Any],
    expected: str,
) -> None:
    settings = {k: v for k, v in {**fast_config, **override}.items() if v is not None}

    run = run_tap(tmp_path, settings)

    assert run.returncode == 1
    assert small_sandbox.requests == []
    assert "Traceback" not in run.stderr
    assert expected in run.error
    assert run.stdout == ""
    assert small_sandbox.token_secret not in run.stderr


def test_invalid_settings_stop_the_connection_test_before_any_request(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    run = run_tap(tmp_path, {**fast_config, "chain_id": "12x"}, "--test")

    assert run.returncode == 1
    assert "Setting chain_id must be a positive integer" in run.error
    assert small_sandbox.requests == []
