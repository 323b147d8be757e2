"""`meltano run` into a target that stops reading, then Ctrl-C: the tap ends within seconds.

The loader here stands for a target busy flushing a large batch: it reads nothing and
ignores SIGINT and SIGTERM until the test lets it finish. The tap, its output stalled behind
Meltano's full buffers, gets Ctrl-C (SIGINT to the process group) and Meltano's SIGTERM; it
must end within ``BOUND_SECONDS`` whatever its output does. (Meltano 4.4 itself may then need
a second Ctrl-C: it stops reading the tap's output once its buffer is full and, after Ctrl-C,
waits for that output to close before it exits; the tap can do nothing about that. The test
gives it that second Ctrl-C and a bound.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from tap_spaaza_users.sandbox import Sandbox

from .conftest import PROJECT_ROOT, Meltano

#: The issue's bound: the tap ends within this many seconds of Ctrl-C.
BOUND_SECONDS = 10


def project_with_stalled_target(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the Meltano project with a loader that reads nothing until ``go`` exists."""
    project = tmp_path / "project"
    project.mkdir()
    go = tmp_path / "go"
    loader = tmp_path / "target-stalled"
    loader.write_text(
        f"#!/bin/bash\ntrap '' INT TERM\nwhile [ ! -e {go} ]; do sleep 0.1; done\nexit 1\n"
    )
    loader.chmod(0o755)
    spec = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    # Meltano finds the installed extractor by its pip_url: the same project, named absolutely.
    spec["plugins"]["extractors"][0]["pip_url"] = f"-e {PROJECT_ROOT}[sandbox]"
    spec["plugins"]["loaders"].append(
        {"name": "target-stalled", "namespace": "target_stalled", "executable": str(loader)}
    )
    (project / "meltano.yml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return project, go


def process_group(pgid: int) -> dict[int, str]:
    """The live processes of a process group: pid to command line."""
    found = {}
    for path in Path("/proc").iterdir():
        entry = path.name
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (path / "stat").read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found[int(entry)] = (path / "cmdline").read_text().replace("\0", " ")
    return found


def written_bytes(pid: int) -> int:
    """How many bytes process ``pid`` has written so far."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def wait_until_stalled(pid: int) -> None:
    """Wait until the tap has written a lot and then nothing for a second (it is blocked)."""
    deadline = time.monotonic() + 120
    last, since = -1, time.monotonic()
    while True:
        assert time.monotonic() < deadline, "the tap never stalled"
        written, now = written_bytes(pid), time.monotonic()
        if written != last:
            last, since = written, now
        elif written > 1_000_000 and now - since > 1.0:
            return
        time.sleep(0.1)


def test_ctrl_c_ends_a_meltano_run_whose_target_stopped_reading(
    meltano: Meltano, tmp_path: Path
) -> None:
    project, go = project_with_stalled_target(tmp_path)
    with Sandbox(users=8000, seed=3, task_base_seconds=0.0, task_seconds_per_1k_users=0.0) as sb:
        meltano.use_sandbox(sb)
        env = {**meltano.env, "MELTANO_ELT_BUFFER_SIZE": str(2 * 1024 * 1024)}
        with (tmp_path / "meltano.log").open("wb") as log:
            run = subprocess.Popen(
                [str(meltano.executable), "run", "tap-spaaza-users", "target-stalled"],
                cwd=project,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 120
            while not (
                taps := [
                    p
                    for p, a in process_group(run.pid).items()
                    if "bin/tap-" in a and "--discover" not in a
                ]
            ):
                assert run.poll() is None, (tmp_path / "meltano.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the tap never started"
                time.sleep(0.1)
            (tap,) = taps
            wait_until_stalled(tap)

            os.killpg(run.pid, signal.SIGINT)  # Ctrl-C
            stopped = time.monotonic()
            time.sleep(2)
            go.touch()  # the target's flush ends; it exits
            while tap in process_group(run.pid):
                assert time.monotonic() - stopped < BOUND_SECONDS, "the tap did not end"
                time.sleep(0.1)

            if run.poll() is None:
                os.killpg(run.pid, signal.SIGINT)  # Meltano's own second Ctrl-C (see above)
            try:
                code = run.wait(30)
            except subprocess.TimeoutExpired:
                left = process_group(run.pid)
                tail = (tmp_path / "meltano.log").read_text()[-3000:]
                msg = f"Meltano still runs 30 s after its second Ctrl-C: {left}\n{tail}"
                raise AssertionError(msg) from None
            assert code != 0
            log_text = (tmp_path / "meltano.log").read_text()
            assert "Stopped by SIGINT" in log_text
            assert "Traceback" not in log_text.split("Terminating ExtractLoadBlocks")[0]
        finally:
            go.touch()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
            run.wait(30)
