"""The fenced blocks of the docs/ pages, each found by its ``<!-- tested: NAME -->`` line."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def doc_block(page: str, marker: str) -> str:
    """The one fenced block that follows ``<!-- tested: marker -->`` in ``docs/page``."""
    text = (DOCS / page).read_text(encoding="utf-8")
    (block,) = re.findall(rf"<!-- tested: {marker} -->\n```\w*\n(.*?)```", text, flags=re.DOTALL)
    return str(block)


def doc_markers(page: str) -> list[str]:
    """Every tested-block marker of ``docs/page``, in order."""
    return re.findall(r"<!-- tested: ([\w-]+) -->\n```", (DOCS / page).read_text(encoding="utf-8"))


def untested_blocks(page: str) -> int:
    """How many fenced blocks of ``docs/page`` no tested marker stands above."""
    text = (DOCS / page).read_text(encoding="utf-8")
    fences = re.findall(r"(?:^|\n)(.*)\n```\w+\n", text)
    return sum(1 for line in fences if not line.startswith("<!-- tested: "))


def command_lines(block: str) -> list[str]:
    """A shell block's lines, without blanks and comments."""
    return [x for x in block.splitlines() if x.strip() and not x.lstrip().startswith("#")]
