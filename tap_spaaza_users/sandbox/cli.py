"""The ``spaaza-sandbox`` command: run the sandbox until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.sandbox.chains import ChainsSandbox
from tap_spaaza_users.sandbox.core import Sandbox
from tap_spaaza_users.sandbox.faults import FAULT_KINDS
from tap_spaaza_users.sandbox.options import STATE_CODE_CASES

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

LIST_OPTIONS = frozenset({"extra_columns", "missing_columns", "rows", "logs"})


def _value(key: str, text: str) -> Any:  # noqa: ANN401 - any JSON value
    """Parse an option value: JSON when it is JSON, a ``;``-separated list for list options."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    if key in LIST_OPTIONS:
        return [_value("", part) for part in text.split(";") if part]
    return text


def parse_fault(text: str) -> tuple[str, dict[str, Any]]:
    """Parse ``KIND``, ``KIND:key=value,...`` or ``KIND:{json}`` into (kind, params).

    Raises:
        argparse.ArgumentTypeError: unknown kind or bad syntax.
    """
    kind, _, rest = text.partition(":")
    if kind not in FAULT_KINDS:
        msg = f"unknown fault {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}"
        raise argparse.ArgumentTypeError(msg)
    if rest.startswith(("{", "[")):
        try:
            given = json.loads(rest)
        except ValueError as error:
            msg = f"fault {kind} parameters are not valid JSON ({error}): {rest}"
            raise argparse.ArgumentTypeError(msg) from None
        if not isinstance(given, dict):
            msg = f'fault {kind} parameters must be a JSON object, like {kind}:{{"times": 2}}'
            raise argparse.ArgumentTypeError(msg)
        return kind, given
    params: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            msg = f"fault parameter {item!r} is not key=value"
            raise argparse.ArgumentTypeError(msg)
        params[key] = _value(key, value)
    return kind, params


def parse_dialect(text: str) -> tuple[str, Any]:
    """Parse a ``key=value`` CSV dialect option (lists separated by ``;``).

    Raises:
        argparse.ArgumentTypeError: bad syntax.
    """
    key, sep, value = text.partition("=")
    if not sep:
        msg = f"dialect option {text!r} is not key=value"
        raise argparse.ArgumentTypeError(msg)
    return key, _value(key, value)


def parse_chains(text: str) -> list[int]:
    """Parse ``--chains 1234,5678``: distinct positive chain ids.

    Raises:
        argparse.ArgumentTypeError: bad syntax.
    """
    try:
        chains = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        chains = []
    if not chains or min(chains) < 1 or len(set(chains)) != len(chains):
        msg = f"--chains takes distinct chain ids separated by commas, like 1234,5678, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return chains


def build_parser() -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="spaaza-sandbox",
        description="A local Spaaza Services API (Tasks API + storage) over synthetic users.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    add("--port", type=int, default=8765, help="API port; 0 picks a free one")
    add("--storage-port", type=int, default=0, help="storage port; 0 picks a free one")
    add("--users", type=int, default=10_000, help="number of generated users")
    add(
        "--seed",
        type=int,
        default=1,
        help="seed of the generated users and demo token; an export is byte-identical only for "
        "the same --seed, --users and --now (dates count back from the start time)",
    )
    add(
        "--chains",
        type=parse_chains,
        default=None,
        help="serve these chains (1234,5678,...) "
        "on one port, each with its own users (seed, seed+1, ...) and demo token; "
        "each chain's storage then takes a free port (no --storage-port)",
    )
    add("--url-ttl", type=float, default=3600, help="download URL lifetime in seconds")
    add("--index-lag", type=float, default=0, help="seconds before new users are exported")
    add("--task-base-seconds", type=float, default=2.0, help="fixed task duration")
    add("--task-seconds-per-1k", type=float, default=0.05, help="task duration per 1k users")
    add("--storage-bandwidth", type=float, default=None, help="storage bytes/s for all bodies")
    add("--state-code-case", choices=STATE_CODE_CASES, default="upper", help="task state.code case")
    add(
        "--now",
        type=parse_utc,
        default=None,
        help="start the clock at this ISO time (default: real now); the users' dates count "
        "back from it, so pin it (with --seed and --users) for byte-identical exports",
    )
    add(
        "--fault",
        type=parse_fault,
        action="append",
        default=[],
        help="arm a fault (repeatable): KIND, KIND:k=v,k=v (lists: a;b) or "
        'KIND:{"k": v, ...} (JSON, for values holding commas); an unknown KIND lists the kinds',
    )
    add("--dialect", type=parse_dialect, action="append", default=[], help="CSV variant: k=v")
    add("--ready-file", type=Path, default=None, help="write the connection JSON here once up")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until interrupted; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.chains and len(args.chains) > 1 and args.storage_port:
        parser.error(
            "--storage-port works with one chain only: with several --chains each chain's "
            "storage takes a free port (see the ready file or the printed storage URLs)"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    _remove_ready_file(args.ready_file)  # a reused workspace never reads a previous run's URL
    try:
        return _serve(args)
    finally:
        _remove_ready_file(args.ready_file)


def _remove_ready_file(ready_file: Path | None) -> None:
    """Delete the ready file (and a half-written one), if any."""
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)
        ready_file.with_name(ready_file.name + ".tmp").unlink(missing_ok=True)


def _serve(args: argparse.Namespace) -> int:
    """Start the sandbox ``args`` describe and serve until SIGINT/SIGTERM; the exit code."""
    options: dict[str, Any] = {
        "users": args.users,
        "url_ttl_seconds": args.url_ttl,
        "index_lag_seconds": args.index_lag,
        "task_base_seconds": args.task_base_seconds,
        "task_seconds_per_1k_users": args.task_seconds_per_1k,
        "now": args.now,
        "state_code_case": args.state_code_case,
        "storage_bytes_per_second": args.storage_bandwidth,
    }
    sandbox: Sandbox | ChainsSandbox
    try:
        if args.chains and len(args.chains) > 1:
            sandbox = ChainsSandbox(
                args.chains, seed=args.seed, host=args.host, port=args.port, **options
            )
            chains = sandbox.chains
        else:
            chain = {"chain_id": args.chains[0]} if args.chains else {}
            sandbox = Sandbox(
                seed=args.seed, host=args.host, port=args.port, storage_port=args.storage_port,
                **chain, **options,
            )  # fmt: skip
            chains = [sandbox]
    except OSError as error:
        hint = f"pick another --port (now {args.port}) or --storage-port (0 picks a free one)"
        print(f"spaaza-sandbox: {error.strerror or error}; {hint}", file=sys.stderr)  # noqa: T201
        return 2
    try:
        for each in chains:
            for kind, params in args.fault:
                each.inject(kind, **params)
            if args.dialect:
                each.set_csv_dialect(**dict(args.dialect))
    except (TypeError, ValueError) as error:
        sandbox.stop()
        print(f"spaaza-sandbox: {error}", file=sys.stderr)  # noqa: T201
        return 2
    stopping = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with sandbox:
        _announce(sandbox, args.ready_file)
        while not stopping.wait(0.5):
            pass
    return 0


def _announce(sandbox: Sandbox | ChainsSandbox, ready_file: Path | None) -> None:
    """Print where the sandbox listens and its demo credentials; write the ready file."""
    info = sandbox.describe()
    lines = [
        f"Spaaza sandbox API:     {info['url']}",
        f"Storage endpoint:       {info['storage_url']}",
        f"Chain id:               {info['chain_id']}",
        f"Access token id:        {info['token_id']}",
        f"Access token secret:    {info['token_secret']}  (demo credentials)",
    ]
    for chain in info.get("chains", [])[1:]:
        lines += [
            f"Chain id:               {chain['chain_id']}",
            f"Access token id:        {chain['token_id']}",
            f"Access token secret:    {chain['token_secret']}  (demo credentials)",
        ]
    lines += [
        "Control namespace:      /_sandbox/... (reset, clock, users, faults, options, ...)",
        "Press Ctrl+C to stop.",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201
    if ready_file is not None:
        tmp = ready_file.with_name(ready_file.name + ".tmp")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        tmp.replace(ready_file)
