"""A copy of the project's Meltano project with a docs page's meltano.yml block merged in."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import yaml

from .conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path


def merged_project(workdir: Path, block: str, *, local_pip_url: bool = False) -> Path:
    """Copy meltano.yml and loaders/ to ``workdir/project``, with ``block`` merged in.

    Plugins of the block are added to the project's; its other top-level keys (such as
    ``state_backend``) are set. With ``local_pip_url``, a ``-e .`` pip_url of the block
    names this checkout (the copy is elsewhere).

    Args:
        workdir: Where the project is made.
        block: A meltano.yml block of a docs page.
        local_pip_url: Point ``-e .`` pip_urls at this checkout.

    Returns:
        The project directory.
    """
    project = workdir / "project"
    project.mkdir()
    shutil.copytree(PROJECT_ROOT / "loaders", project / "loaders")
    config: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text("utf-8"))
    added: dict[str, Any] = yaml.safe_load(block)
    for kind, plugins in added.pop("plugins", {}).items():
        for plugin in plugins:
            pip_url = str(plugin.get("pip_url", ""))
            if local_pip_url and pip_url.startswith("-e ."):
                plugin["pip_url"] = f"-e {PROJECT_ROOT}{pip_url[4:]}"
            config["plugins"].setdefault(kind, []).append(plugin)
    config.update(added)
    (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
    return project


def own_sys_dir(sys_dir: Path, plugins_from: Path = PROJECT_ROOT / ".meltano") -> Path:
    """A Meltano system dir (no state yet) whose plugin folders link installed plugins one by one.

    Plugins the test installs itself land in the test's folder, not in the project's.

    Args:
        sys_dir: The system dir to make.
        plugins_from: The system dir whose installed plugins are linked.

    Returns:
        The system dir (for ``MELTANO_SYS_DIR_ROOT``).
    """
    for plugin_type in ("extractors", "loaders"):
        (sys_dir / plugin_type).mkdir(parents=True)
        for installed in (plugins_from / plugin_type).iterdir():
            (sys_dir / plugin_type / installed.name).symlink_to(installed.resolve())
    return sys_dir
