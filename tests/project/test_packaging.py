"""The distribution: every import declared, one version, and a wheel that installs and runs."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import venv
import zipfile
from importlib.metadata import metadata, packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import tap_spaaza_users
from tap_spaaza_users.sandbox import INSTALL_HINT
from tap_spaaza_users.tap import TapSpaazaUsers

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tap_spaaza_users"
DISTRIBUTION = "tap-spaaza-users"
#: Loaded only by pytest, which then is installed: not a dependency of the tap.
PYTEST_PLUGIN = PACKAGE / "sandbox" / "pytest_plugin.py"
#: Imported only for type checkers (typeshed's private module).
TYPING_ONLY = frozenset({"_typeshed"})
CLASSIFIERS = {
    "Typing :: Typed",
    "Intended Audience :: Developers",
    "Operating System :: POSIX",
}
COMMAND_TIMEOUT = 60
INSTALL_TIMEOUT = 600


def third_party_imports(path: Path) -> set[str]:
    """Return the top-level names of the modules a file imports that are not our own or stdlib."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    ours = {"tap_spaaza_users", "__future__"}
    return {n for n in names if n not in ours and n not in sys.stdlib_module_names} - TYPING_ONLY


def declared(extra: str | None = None) -> set[str]:
    """Return the distributions the installed metadata requires always, or for ``extra`` alone."""
    names: set[str] = set()
    for text in requires(DISTRIBUTION) or []:
        requirement = Requirement(text)
        needs = re.search(r'extra == "([^"]+)"', str(requirement.marker or ""))
        if (needs.group(1) if needs else None) == extra:
            names.add(str(canonicalize_name(requirement.name)))
    return names


def distribution_of(module: str) -> set[str]:
    """Return the (canonical) distributions that install a top-level module."""
    return {str(canonicalize_name(name)) for name in packages_distributions().get(module, [])}


def test_every_imported_package_is_declared_by_its_distribution_name() -> None:
    core, sandbox = declared(), declared("sandbox")
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PYTEST_PLUGIN:
            continue
        allowed = core | sandbox if "sandbox" in path.relative_to(PACKAGE).parts[:-1] else core
        missing += [
            f"{path.relative_to(ROOT)}: {module} (from {distribution_of(module) or 'nowhere'})"
            for module in sorted(third_party_imports(path))
            if not distribution_of(module) & allowed
        ]
    assert not missing, "imported but not declared in pyproject.toml:\n" + "\n".join(missing)
    assert "python-backoff" in core
    assert "backoff" not in core, "`backoff` is python-backoff's module, not its distribution"
    assert "werkzeug" not in core, "werkzeug belongs to the sandbox extra"


def test_typing_extensions_is_required_only_where_typing_lacks_override() -> None:
    (text,) = [r for r in requires(DISTRIBUTION) or [] if r.lower().startswith("typing")]
    marker = Requirement(text).marker
    assert marker is not None
    assert marker.evaluate({"python_version": "3.11"})
    assert not marker.evaluate({"python_version": "3.12"})


def test_the_version_has_one_source() -> None:
    version = metadata(DISTRIBUTION)["Version"]
    assert tap_spaaza_users.__version__ == version
    assert TapSpaazaUsers.plugin_version == version
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'\nversion = "{version}"\n' in pyproject
    copies = [p.name for p in PACKAGE.rglob("*.py") if f'"{version}"' in p.read_text("utf-8")]
    assert not copies, f"the version is written out again in {copies}"


def test_package_is_typed_and_licensed() -> None:
    assert (PACKAGE / "py.typed").is_file()
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence
    assert "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
    classifiers = set(metadata(DISTRIBUTION).get_all("Classifier") or [])
    assert classifiers >= CLASSIFIERS


def build_wheel(destination: Path) -> Path:
    """Build the project's wheel into ``destination`` with pip, as a user would."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(destination)],
        check=True,
        capture_output=True,
        timeout=INSTALL_TIMEOUT,
    )
    (wheel,) = destination.glob("tap_spaaza_users-*.whl")
    return wheel


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a command of the fresh environment, capturing its output."""
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        check=False,
        timeout=COMMAND_TIMEOUT,
    )


@pytest.mark.slow
def test_built_wheel_installs_into_a_fresh_environment_and_runs(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
        wheel_metadata = archive.read(next(f for f in files if f.endswith(".dist-info/METADATA")))
    assert "tap_spaaza_users/py.typed" in files
    assert any(f.endswith(".dist-info/licenses/LICENSE") for f in files)
    assert not any(f.startswith("tests/") for f in files)
    assert b"License-Expression: Apache-2.0" in wheel_metadata
    assert b"Classifier: Typing :: Typed" in wheel_metadata

    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    installed = run(bin_dir / "python", "-m", "pip", "install", "--quiet", wheel)
    assert installed.returncode == 0, installed.stderr[-3000:]

    about = run(bin_dir / "tap-spaaza-users", "--about", "--format=json")
    assert about.returncode == 0, about.stderr[-3000:]
    info = json.loads(about.stdout)
    assert info["name"] == DISTRIBUTION
    assert info["version"] == metadata(DISTRIBUTION)["Version"]
    assert {"chain_id", "access_token_id", "access_token_secret"} <= set(
        info["settings"]["properties"]
    )

    # The declared dependencies suffice for every module outside the sandbox.
    imports = run(
        bin_dir / "python",
        "-c",
        "import importlib, pkgutil, tap_spaaza_users as p; "
        "[importlib.import_module(f'tap_spaaza_users.{m.name}') "
        "for m in pkgutil.iter_modules(p.__path__) if m.name not in ('sandbox', '__main__')]",
    )
    assert imports.returncode == 0, imports.stderr[-3000:]

    sandbox = run(bin_dir / "spaaza-sandbox", "--help")
    assert sandbox.returncode != 0
    assert sandbox.stderr.strip() == INSTALL_HINT
    assert "Traceback" not in sandbox.stderr + sandbox.stdout
