"""The demo's checks and summary: warehouse rows against the sandbox, then a short report."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

TABLE = "spaaza.users"
OPT_INS = {
    "opt_in_programme_programme_opted_in": "loyalty programme",
    "mailing_list_subscribed": "e-mail newsletter",
    "push_notification_subscribed": "push notifications",
    "printed_mailing_list_subscribed": "printed mailings",
}


class DemoCheckError(Exception):
    """The warehouse does not match the sandbox: the demo must fail loudly."""


def sandbox_user_count(api_url: str) -> int:
    """Ask the sandbox's control API how many users it holds."""
    with urllib.request.urlopen(f"{api_url}/_sandbox/users", timeout=30) as response:  # noqa: S310
        return int(json.load(response)["count"])


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:  # noqa: ANN401
    """Run one read-only query against the demo warehouse."""
    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def bookmark_of(state_file: Path) -> str:
    """Return the users bookmark from `meltano state get` output."""
    state = json.loads(state_file.read_text(encoding="utf-8"))
    return str(state["singer_state"]["bookmarks"]["users"]["replication_key_value"])


def check(args: argparse.Namespace) -> None:
    """Compare the warehouse with the sandbox after a run and record the run's numbers.

    Raises:
        DemoCheckError: rows were lost or doubled, or the final state was not kept.
    """
    expected = sandbox_user_count(args.sandbox)
    ((rows, distinct, newest),) = query(
        args.db,
        f"SELECT count(*), count(DISTINCT id), max(created_date) FROM {TABLE}",  # noqa: S608
    )
    if rows != expected or distinct != expected:
        msg = (
            f"{args.label}: the warehouse holds {rows} rows ({distinct} distinct users) but the "
            f"sandbox has {expected} users: the loader lost or duplicated rows"
        )
        raise DemoCheckError(msg)
    bookmark = bookmark_of(args.state)
    if bookmark[:19] != newest.isoformat()[:19]:
        msg = (
            f"{args.label}: Meltano's bookmark {bookmark} is not the newest created_date "
            f"{newest.isoformat()} in the warehouse: the run's final state was lost"
        )
        raise DemoCheckError(msg)
    ((delivered,),) = query(
        args.db,
        f"SELECT count(*) FROM {TABLE} WHERE _sdc_batched_at >= ?",  # noqa: S608
        datetime.fromisoformat(args.started_at),
    )
    runs = json.loads(args.runs.read_text(encoding="utf-8")) if args.runs.exists() else []
    previous_total = runs[-1]["total"] if runs else 0
    runs.append(
        {
            "label": args.label,
            "delivered": delivered,
            "new": rows - previous_total,
            "total": rows,
            "bookmark": bookmark,
        }
    )
    args.runs.write_text(json.dumps(runs, indent=2), encoding="utf-8")
    print(f"✓ {args.label}: {delivered:,} rows loaded; warehouse = sandbox = {rows:,} users")


def percent(part: float, whole: float) -> str:
    """Format a share as a percentage."""
    return f"{100 * part / whole:5.1f}%" if whole else "  n/a"


def report(args: argparse.Namespace) -> None:
    """Print the per-run table and what the warehouse says about the users."""
    runs = json.loads(args.runs.read_text(encoding="utf-8"))
    print("\nUsers loaded per run")
    print(f"  {'run':<24}{'rows loaded':>12}{'new users':>11}{'in warehouse':>14}  bookmark")
    for run in runs:
        print(
            f"  {run['label']:<24}{run['delivered']:>12,}{run['new']:>11,}"
            f"{run['total']:>14,}  {run['bookmark']}"
        )
    if len(runs) > 1:
        last = runs[-1]
        overlap = last["delivered"] - last["new"]
        print(
            f"  The incremental run loaded only the {last['new']:,} new users"
            + (f" plus {overlap:,} re-read in the lookback window (upserted)" if overlap else "")
            + "."
        )
    ((total,),) = query(args.db, f"SELECT count(*) FROM {TABLE}")  # noqa: S608
    print_breakdown(args.db, "By country (top 8)", "country_code", total, limit=8)
    print_breakdown(args.db, "By loyalty tier", "loyalty_status_name", total, limit=20)
    print("\nOpt-in rates (of users with a known answer)")
    for column, label in OPT_INS.items():
        ((yes, known),) = query(
            args.db,
            f"SELECT count(*) FILTER (WHERE {column}), count({column}) FROM {TABLE}",  # noqa: S608
        )
        print(f"  {label:<22}{percent(yes, known)}  ({yes:,} of {known:,})")


def print_breakdown(db: Path, title: str, column: str, total: int, limit: int) -> None:
    """Print the most common values of ``column`` with their counts and shares."""
    rows = query(
        db,
        f"SELECT coalesce(CAST({column} AS VARCHAR), '(none)') AS value, count(*) AS n "  # noqa: S608
        f"FROM {TABLE} GROUP BY 1 ORDER BY n DESC, value LIMIT {int(limit)}",
    )
    print(f"\n{title}")
    for value, count in rows:
        print(f"  {value:<22}{count:>8,}  {percent(count, total)}")


def build_parser() -> argparse.ArgumentParser:
    """Return the script's argument parser."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True, help="the demo's DuckDB file")
    parser.add_argument("--runs", type=Path, required=True, help="JSON file of per-run numbers")
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("check", help="compare warehouse and sandbox after a run")
    check_parser.add_argument("--sandbox", required=True, help="the sandbox API URL")
    check_parser.add_argument("--state", type=Path, required=True, help="`meltano state get` out")
    check_parser.add_argument("--label", required=True, help="name of the run")
    check_parser.add_argument("--started-at", required=True, help="local ISO time the run began")
    commands.add_parser("report", help="print the summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a failed check exits with status 1 and says why."""
    args = build_parser().parse_args(argv)
    try:
        check(args) if args.command == "check" else report(args)
    except DemoCheckError as error:
        print(f"\n✗ DEMO CHECK FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
