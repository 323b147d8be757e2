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


#: The package's modules along the data path: the command line and settings, the stream and
#: its plan, the export task and its API, the file's way down, the rows, then what all share.
DATA_PATH = (
    "cli.py",
    "tap.py",
    "settings/",
    "streams.py",
    "full_refresh.py",
    "state/",
    "windows.py",
    "tasks/",
    "export.py",
    "segments.py",
    "api/",
    "emission.py",
    "download/",
    "records/",
    "batch_files.py",
    "sdk_hooks/",
    "logs/",
    "contract.py",
    "errors.py",
    "sandbox/",
)
#: The wings whose modules are listed one by one under their folder, along their own path.
WING_PATHS = {
    "settings": ("schema.py", "required.py", "checks.py", "typed.py"),
    "state": ("keys.py", "check.py", "bookmark.py", "tasks.py", "refresh.py"),
    "tasks": ("ledger.py", "sweep.py", "listing.py", "tags.py", "clock.py", "polling.py"),
    "api": ("address.py", "client.py", "request_metrics.py", "answers.py", "retries.py"),
    "download": (
        "background.py",
        "fetch.py",
        "budget.py",
        "redirects.py",
        "statuses.py",
        "writer.py",
        "storage.py",
        "integrity.py",
        "spool.py",
    ),
    "records": ("reader.py", "source.py", "lines.py", "values.py"),
    "logs": ("fields.py", "poll_metrics.py", "export_times.py", "scrub.py"),
}


def _position(name: str) -> tuple[int, str]:
    """Where a module or folder stands on the data path (unknown ones last, by name)."""
    return (DATA_PATH.index(name) if name in DATA_PATH else len(DATA_PATH), name)


def _wing(folder: Path) -> list[str]:
    """A wing's modules, indented under its line, along the wing's own path."""
    order = WING_PATHS.get(folder.name)
    if order is None:
        return []
    modules = sorted(
        (path for path in folder.glob("*.py") if path.name != "__init__.py"),
        key=lambda path: (order.index(path.name) if path.name in order else len(order), path.name),
    )
    return [f"  - `{path.name}`: {_summary(path)}" for path in modules]


def module_list() -> str:
    """One line per module of the package and per sub-package, along the data path.

    A sub-package's line is its ``__init__`` docstring; a wing's modules follow it, indented.
    """
    entries = [
        path for path in PACKAGE.glob("*.py") if path.name not in {"__init__.py", "__main__.py"}
    ]
    entries += [init.parent for init in PACKAGE.glob("*/__init__.py")]
    lines: list[str] = []
    for entry in sorted(entries, key=lambda e: _position(e.name + ("/" if e.is_dir() else ""))):
        if entry.is_dir():
            lines.append(f"- `{entry.name}/`: {_summary(entry / '__init__.py')}")
            lines += _wing(entry)
        else:
            lines.append(f"- `{entry.name}`: {_summary(entry)}")
    return "\n".join(lines)


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
