"""The package's import graph: the sandbox leans on the contract only, and no module cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import tap_spaaza_users

PACKAGE = "tap_spaaza_users"
ROOT = Path(tap_spaaza_users.__file__).parent
CONTRACT = f"{PACKAGE}.contract"
SANDBOX = f"{PACKAGE}.sandbox"
WINDOWS = f"{PACKAGE}.windows"
#: The modules a ``Window`` travels through in one sync, besides windows itself: the stream
#: plans the windows, the ledger finds each one's task, the emitter emits and closes it. The
#: layers below take plain values (a window's start and end, its key).
WINDOW_MODULES = {f"{PACKAGE}.streams", f"{PACKAGE}.tasks.ledger", f"{PACKAGE}.emission"}


def module_name(path: Path) -> str:
    """The dotted name of a module file of the package."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    """Whether an ``if`` is ``if TYPE_CHECKING:`` (bare or as ``typing.TYPE_CHECKING``)."""
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST, *, runtime_only: bool) -> list[ast.Import | ast.ImportFrom]:
    """Every import under ``node``, in functions too; without ``if TYPE_CHECKING:`` bodies."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [node]
    found: list[ast.Import | ast.ImportFrom] = []
    if runtime_only and isinstance(node, ast.If) and _is_type_checking(node):
        children: list[ast.AST] = list(node.orelse)
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        found.extend(_import_nodes(child, runtime_only=runtime_only))
    return found


def _from_module(name: str, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from ... import`` in module ``name`` reads from."""
    base = node.module or ""
    if node.level:
        is_package = MODULES[name].name == "__init__.py"
        anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
        base = ".".join([*anchor, base] if base else anchor)
    return base


def package_imports(name: str, *, runtime_only: bool) -> set[str]:
    """The package's modules (or packages) that module ``name`` imports."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in _import_nodes(tree, runtime_only=runtime_only):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = _from_module(name, node)
        targets.add(base)
        # ``from package import module`` imports the module itself.
        targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {target for target in targets if target in MODULES and target != name}


def imports_window(name: str) -> bool:
    """Whether module ``name`` imports ``Window`` from windows (``TYPE_CHECKING`` included).

    ``from ... windows import Window`` counts, and so does the windows module imported whole
    (``from tap_spaaza_users import windows``) when the module then names ``windows.Window``.
    """
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    whole = False
    for node in _import_nodes(tree, runtime_only=False):
        if isinstance(node, ast.Import):
            whole |= any(alias.name == WINDOWS for alias in node.names)
            continue
        base = _from_module(name, node)
        names = {alias.name for alias in node.names}
        if base == WINDOWS and "Window" in names:
            return True
        whole |= base == PACKAGE and "windows" in names
    return whole and any(
        isinstance(node, ast.Attribute) and node.attr == "Window" for node in ast.walk(tree)
    )


def runtime_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports when it runs (``TYPE_CHECKING`` aside)."""
    return {name: package_imports(name, runtime_only=True) for name in MODULES}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules ``start`` imports, directly or through others (itself only via a cycle)."""
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each set of modules that import one another, directly or through others, sorted."""
    reach = {node: reachable(graph, node) for node in graph}
    groups = {
        frozenset({node} | {other for other in reach[node] if node in reach[other]})
        for node in graph
        if node in reach[node]
    }
    return sorted(sorted(group) for group in groups)


def test_the_walker_sees_plain_relative_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import tap_spaaza_users.records.reader\n"
        "from tap_spaaza_users import segments\n"
        "if TYPE_CHECKING:\n"
        "    from tap_spaaza_users.streams import UsersStream\n"
        "def later():\n"
        "    from tap_spaaza_users.api.client import SpaazaClient\n",
        encoding="utf-8",
    )
    MODULES["probe"] = source
    try:
        runtime = package_imports("probe", runtime_only=True)
        everything = package_imports("probe", runtime_only=False)
    finally:
        del MODULES["probe"]
    expected = {
        f"{PACKAGE}.records.reader",
        f"{PACKAGE}.segments",
        f"{PACKAGE}.api.client",
        PACKAGE,
    }
    assert runtime == expected
    assert everything == {*expected, f"{PACKAGE}.streams"}
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_sandbox_imports_nothing_of_the_tap_but_the_contract() -> None:
    allowed = {PACKAGE, CONTRACT}
    strays = {
        name: sorted(
            target
            for target in package_imports(name, runtime_only=False)
            if target not in allowed and not target.startswith(SANDBOX)
        )
        for name in MODULES
        if name.startswith(SANDBOX)
    }
    assert {name: found for name, found in strays.items() if found} == {}
    assert any(CONTRACT in package_imports(name, runtime_only=False) for name in strays)


def test_the_contract_imports_nothing_of_the_package() -> None:
    assert package_imports(CONTRACT, runtime_only=False) == set()


def test_no_runtime_import_cycle_in_the_package() -> None:
    graph = runtime_graph()
    assert graph[f"{PACKAGE}.streams"], "the walker must see the stream's imports"
    assert find_cycles(graph) == []


def test_no_import_cycle_among_the_tap_modules_not_even_for_type_checking() -> None:
    # A cycle through ``if TYPE_CHECKING:`` imports is still two modules that need each other.
    tap_modules = {name for name in MODULES if not name.startswith(SANDBOX)}
    graph = {name: package_imports(name, runtime_only=False) & tap_modules for name in tap_modules}
    assert find_cycles(graph) == []


def test_no_import_cycle_in_the_sandbox_not_even_for_type_checking() -> None:
    # The control app sees the sandbox through a Protocol, not by importing its core.
    sandbox = {name for name in MODULES if name.startswith(SANDBOX)}
    graph = {name: package_imports(name, runtime_only=False) & sandbox for name in sandbox}
    assert graph[f"{SANDBOX}.core"], "the walker must see the sandbox's imports"
    assert find_cycles(graph) == []


def test_the_window_finder_sees_type_checking_relative_and_whole_module_imports(
    tmp_path: Path,
) -> None:
    probes = {
        "typed": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from tap_spaaza_users.windows import IdSet, Window\n",
        "relative": "from .windows import Window\n",
        "whole": "from tap_spaaza_users import windows\nspan = windows.Window(None)\n",
        "plain": "import tap_spaaza_users.windows\nspan = tap_spaaza_users.windows.Window(None)\n",
        "ids_only": "from tap_spaaza_users.windows import IdSet\n",
        "module_only": "from tap_spaaza_users import windows\nids = windows.IdSet()\n",
    }
    for probe, source in probes.items():
        (tmp_path / f"{probe}.py").write_text(source, encoding="utf-8")
        MODULES[f"{PACKAGE}.{probe}"] = tmp_path / f"{probe}.py"
    try:
        found = {probe for probe in probes if imports_window(f"{PACKAGE}.{probe}")}
    finally:
        for probe in probes:
            del MODULES[f"{PACKAGE}.{probe}"]
    assert found == {"typed", "relative", "whole", "plain"}


def test_a_window_visits_at_most_four_modules_in_one_sync() -> None:
    # Following a window from the stream through one sync: streams, tasks/ledger, emission
    # and windows itself; every other module takes plain values, so this cannot drift back.
    importers = {name for name in MODULES if name != WINDOWS and imports_window(name)}
    assert importers == WINDOW_MODULES
    assert len({*importers, WINDOWS}) <= 4  # the bound
