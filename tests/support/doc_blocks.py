"""The fenced blocks of the README and of docs/, each marked as run by a test or not run, and why.

A block follows either ``<!-- tested: NAME -->`` (a test runs or checks every block of that
name) or ``<!-- not run: REASON -->`` (the reason says what it needs that a test does not have).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FENCE = re.compile(
    r"(?:<!-- (?P<how>tested|not run): (?P<label>[^\n]*?) -->\n)?"
    r"```(?P<lang>\w*)\n(?P<text>.*?)```",
    flags=re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, how it is marked, and its text."""

    path: Path
    how: str | None
    label: str
    language: str
    text: str

    @property
    def lines(self) -> list[str]:
        """Its non-blank lines."""
        return [line for line in self.text.splitlines() if line.strip()]


def documents() -> list[Path]:
    """The README and every page of docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def blocks_in(path: Path) -> list[Block]:
    """Every fenced block of one document, in order."""
    return [
        Block(path, m["how"], m["label"] or "", m["lang"], m["text"])
        for m in FENCE.finditer(path.read_text(encoding="utf-8"))
    ]


def all_blocks() -> list[Block]:
    """Every fenced block of the README and of docs/."""
    return [block for path in documents() for block in blocks_in(path)]


def marked(marker: str) -> list[Block]:
    """Every block marked ``<!-- tested: marker -->``, in whichever document."""
    return [b for b in all_blocks() if b.how == "tested" and b.label == marker]


def marked_text(marker: str) -> str:
    """The text of the one block marked ``<!-- tested: marker -->``."""
    (block,) = marked(marker)
    return block.text
