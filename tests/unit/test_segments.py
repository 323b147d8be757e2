"""Segment settings are checked before any export task: messages name position, field and fix."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tap_spaaza_users.errors import SpaazaConfigError
from tap_spaaza_users.export import build_export_task
from tap_spaaza_users.segments import SegmentChoice, check_segment_settings
from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from tap_spaaza_users.sandbox import Sandbox

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 5, 26, 12, 0, tzinfo=UTC)
FIX = "Fix the rule in the tap settings."
OPTED_IN = {"field_name": "mailing_list_subscribed", "field_type": "boolean", "operator": "is",
            "value": True}  # fmt: skip
HIGH_RFM = {"field_name": "overall", "field_type": "number", "operator": "is_between_number",
            "min": 4, "max": 5}  # fmt: skip


def date_rule(operator: str, **operands: object) -> dict[str, Any]:
    """A rule on created_date."""
    return {"field_name": "created_date", "field_type": "date", "operator": operator, **operands}


def failure(config: dict[str, Any]) -> str:
    """The message of the settings error that ``config`` raises."""
    with pytest.raises(SpaazaConfigError) as caught:
        check_segment_settings(config)
    return str(caught.value)


def test_message_names_position_field_operand_format_and_fix() -> None:
    rules = [OPTED_IN, HIGH_RFM, date_rule("is_between_date", start_date="2024-01-01T00:00:00Z")]

    assert failure({"segment_rules": rules}) == (
        "segment_rules[2] (field 'created_date'): operator 'is_between_date' needs end_date "
        "(an ISO 8601 date-time, e.g. 2024-01-31T00:00:00Z). Fix the rule in the tap settings."
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            date_rule("is_soon"),
            "'is_soon' is unknown; set segment_rules[0].operator to one of contains, does_not",
        ),
        (
            {
                "field_name": "gender",
                "field_type": "keyword",
                "operator": "is_after_date",
                "start_date": "2024-01-01",
            },
            "'keyword' (only to date); set segment_rules[0].operator to one of contains, does_n",
        ),
        (
            {**HIGH_RFM, "field_type": "integer"},
            "field_type 'integer' is unknown; set segment_rules[0].field_type to one of boolean",
        ),
        (
            date_rule("is_after_date", start_date="31/01/2024"),
            "not an ISO 8601 date; set segment_rules[0].start_date to an ISO 8601 date-time, e.g.",
        ),
        (date_rule("is_before_date", end_date="2024-02-30"), "end_date '2024-02-30' is not"),
        (date_rule("is_date", value=20240131), "value 20240131 is not an ISO 8601 date"),
        (date_rule("is_date"), "operator 'is_date' needs value (an ISO 8601 date-time"),
        ({**HIGH_RFM, "min": "4"}, "min '4' is not a number; set segment_rules[0].min to a number"),
        ({**HIGH_RFM, "max": None}, "operator 'is_between_number' needs max (a number)"),
        ({**HIGH_RFM, "min": 5, "max": 4}, "min is above max; swap them"),
        (
            date_rule("is_between_date", start_date="2024-02-01", end_date="2024-01-01T00:00:00Z"),
            "start_date is above end_date; swap them",
        ),
        (
            date_rule("relative_less_than", time_factor="fortnight", time_amount=2),
            "'fortnight' is unknown; set segment_rules[0].time_factor to one of day, hour, minute",
        ),
        (
            date_rule("relative_more_than", time_factor="day"),
            "needs time_amount (a whole number above 0, e.g. 30)",
        ),
        (
            date_rule("relative_more_than", time_factor="day", time_amount=0),
            "time_amount 0 is not a whole number above 0",
        ),
        (
            date_rule("relative_less_than", time_factor="week", time_amount=1.5),
            "time_amount 1.5 is not a whole number above 0",
        ),
        (
            date_rule("relative_less_than", time_factor="week", time_amount=True),
            "time_amount True is not a whole number above 0",
        ),
        ({**OPTED_IN, "value": "yes"}, "value 'yes' is not true or false"),
        ({**HIGH_RFM, "operator": "is", "value": "five"}, "value 'five' is not a number"),
    ],
)
def test_bad_rule_is_refused_naming_the_rule_field_and_fix(
    rule: dict[str, Any], expected: str
) -> None:
    message = failure({"segment_rules": [rule]})

    assert message.startswith(f"segment_rules[0] (field '{rule['field_name']}'): ")
    assert expected in message
    assert message.endswith(FIX)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("opted_in", "must be an object with field_name, field_type and operator, not str"),
        (
            {"field_type": "date", "operator": "is_date", "value": "2024-01-01"},
            "needs field_name, the user field to filter on",
        ),
        ({**OPTED_IN, "field_name": "  "}, "set segment_rules[0].field_name"),
        ({"field_name": "x", "field_type": ["date"], "operator": "is"}, "field_type ['date']"),
    ],
)
def test_rule_without_a_usable_field_name_says_so(rule: object, expected: str) -> None:
    message = failure({"segment_rules": [rule]})

    assert message.startswith("segment_rules[0] (")
    assert expected in message
    assert message.endswith(FIX)


def test_every_operator_with_well_formed_operands_passes_and_extra_keys_are_kept() -> None:
    rules: list[dict[str, Any]] = [
        OPTED_IN,
        HIGH_RFM,
        {**HIGH_RFM, "min": 2.5, "max": 2.5},
        {"field_name": "gender", "field_type": "keyword", "operator": "is_not", "value": "x"},
        {"field_name": "first_name", "field_type": "text", "operator": "contains", "value": "an"},
        {"field_name": "last_name", "field_type": "text", "operator": "does_not_contain",
         "value": "z"},
        {"field_name": "overall", "field_type": "number", "operator": "is", "value": 5},
        date_rule("is_date", value="2024-01-31"),
        date_rule("is_after_date", start_date="2024-01-31T10:00:00+02:00"),
        date_rule("is_before_date", end_date="2024-01-31 10:00:00"),
        date_rule("is_between_date", start_date="2024-01-01", end_date="2024-01-01T00:00:00Z"),
        date_rule("relative_less_than", time_factor="day", time_amount=30),
        date_rule("relative_more_than", time_factor="year", time_amount=2),
        {**OPTED_IN, "field_name": "opt_ins.newsletter", "nested": True,
         "nesting_path": "opt_ins", "note": "kept as is"},
    ]  # fmt: skip

    check_segment_settings({"segment_rules": rules, "segment_join": "any"})

    body = build_export_task(chain_id=7, window_start=None, rules=rules, now=NOW, origin="t")
    assert body["trigger"]["segment"]["rules"][-1]["note"] == "kept as is"


def test_unknown_field_name_is_a_warning_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    shoe = {"field_name": "shoe_size", "field_type": "number", "operator": "is", "value": 42}

    check_segment_settings({"segment_rules": [OPTED_IN, shoe]})

    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("segment_rules[1] (field 'shoe_size'): not a column")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"segment_id": 101, "segment_rules": [OPTED_IN]},
            "Setting segment_id and segment_rules cannot be used together",
        ),
        (
            {"segment_id": 0},
            "Setting segment_id must be the positive number in the segment's Console URL, not 0",
        ),
        ({"segment_id": "101"}, "not '101'"),
        ({"segment_id": True}, "not True"),
        ({"segment_join": "or"}, "Setting segment_join must be 'all' (every rule) or 'any'"),
        ({"segment_rules": {"field_name": "x"}}, "Setting segment_rules must be a list"),
    ],
)
def test_segment_settings_are_checked(settings: dict[str, Any], expected: str) -> None:
    assert expected in failure(settings)


def test_only_a_segment_id_or_rules_joined_by_any_move_the_window_to_our_side() -> None:
    assert SegmentChoice().server_side_window
    assert SegmentChoice(rules=(OPTED_IN,)).server_side_window
    assert SegmentChoice(join="any").server_side_window  # no rules: the window alone
    assert not SegmentChoice(rules=(OPTED_IN, HIGH_RFM), join="any").server_side_window
    assert not SegmentChoice(segment_id=101).server_side_window
    config = {"chain_id": 7, "access_token_id": "id", "access_token_secret": "secret"}
    chosen_config = {**config, "segment_id": 101, "segment_rules": []}
    tap = TapSpaazaUsers(config=chosen_config, parse_env_config=False)
    chosen = tap.settings.segment
    assert chosen == SegmentChoice(segment_id=101)
    assert chosen.describe() == "saved segment 101"


def test_task_body_carries_the_segment_id_or_the_rules_with_their_join() -> None:
    start = dt.datetime(2026, 5, 1, tzinfo=UTC)

    saved = build_export_task(chain_id=7, window_start=start, segment=SegmentChoice(101),
                              now=NOW, origin="t")  # fmt: skip
    either = build_export_task(
        chain_id=7,
        window_start=start,
        now=NOW,
        origin="t",
        segment=SegmentChoice(rules=(OPTED_IN, HIGH_RFM), join="any"),
    )
    both = build_export_task(chain_id=7, window_start=start, now=NOW, origin="t",
                             segment=SegmentChoice(rules=(OPTED_IN, HIGH_RFM)))  # fmt: skip

    assert saved["trigger"] == {"once": "2026-05-26T12:00:00Z", "segment_id": 101}
    assert saved["desc"] == "t: users created since 2026-05-01T00:00:00Z, saved segment 101"
    assert either["trigger"]["segment"]["join"] == "any"
    assert either["trigger"]["segment"]["rules"] == [OPTED_IN, HIGH_RFM]
    assert both["trigger"]["segment"]["join"] == "all"
    window_rule, *rules = both["trigger"]["segment"]["rules"]
    assert window_rule["field_name"] == "created_date"
    assert rules == [OPTED_IN, HIGH_RFM]


def test_bad_rule_stops_the_tap_before_any_request(small_sandbox: Sandbox) -> None:
    config = small_sandbox.tap_config(segment_rules=[OPTED_IN, date_rule("is_after_date")])

    with pytest.raises(SpaazaConfigError, match=r"segment_rules\[1\] \(field 'created_date'\)"):
        TapSpaazaUsers(config=config, parse_env_config=False).sync_all()

    assert small_sandbox.requests == []
    assert small_sandbox.tasks == {}


def test_cli_sync_with_a_bad_rule_fails_in_one_line_without_requests(
    small_sandbox: Sandbox, tmp_path: Path
) -> None:
    config = small_sandbox.tap_config(segment_rules=[{**HIGH_RFM, "min": "high"}])
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    executable = Path(sys.executable).parent / "tap-spaaza-users"

    result = subprocess.run(
        [str(executable), "--config", str(config_file)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stdout == ""
    assert "segment_rules[0] (field 'overall'): min 'high' is not a number" in result.stderr
    assert "Traceback" not in result.stderr
    assert small_sandbox.token_secret not in result.stderr
    assert small_sandbox.requests == []
