"""Rewrite CONTRIBUTING.md's module list from the module docstrings, so it cannot drift."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
PACKAGE = ROOT / "tap_spaaza_users"
START, END = "<!-- modules:start -->", "<!-- modules:end -->"


def _summary(path: Path) -> str:
    """The first line of a module's docstring."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return docstring.splitlines()[0].strip() if docstring else "(no docstring)"


def module_list() -> str:
    """One line per module of the package, and per sub-package (its ``__init__`` docstring)."""
    modules = [
        f"- `{path.name}`: {_summary(path)}"
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name not in {"__init__.py", "__main__.py"}
    ]
    packages = [
        f"- `{init.parent.name}/`: {_summary(init)}"
        for init in sorted(PACKAGE.glob("*/__init__.py"))
    ]
    return "\n".join(modules + packages)


def listed_modules(text: str) -> str:
    """The list between CONTRIBUTING.md's module markers."""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main() -> None:
    """Replace the list between the markers."""
    text = CONTRIBUTING.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    CONTRIBUTING.write_text(f"{head}{START}\n{module_list()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
