"""Rewrite the README's settings table from `tap-spaaza-users --about --format=markdown`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_table() -> str:
    """The settings table as the tap's `--about --format=markdown` prints it."""
    about = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"^## Settings\n\n(\|.*?)\n\n", about, flags=re.MULTILINE | re.DOTALL)
    if match is None:
        msg = "no settings table in --about --format=markdown"
        raise SystemExit(msg)
    return match.group(1)


def readme_table(text: str) -> str:
    """The table between the README's settings markers."""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main() -> None:
    """Replace the table between the markers."""
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
