"""The wrapper asks for a 1 MB pipe on its standard input, and leaves anything else as it is."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from .conftest import TARGET_POSTGRES_BIN as BIN
from .conftest import require_postgres_loader

if TYPE_CHECKING:
    from pathlib import Path

#: Widens standard input as the wrapper's reader does; prints the pipe's size (or NOT-A-PIPE).
SCRIPT = """
import fcntl, sys
from target_postgres_fast.reader import PIPE_BYTES, widen_pipe
widen_pipe(sys.stdin.buffer)
try:
    print(fcntl.fcntl(0, fcntl.F_GETPIPE_SZ), PIPE_BYTES)
except OSError:
    print("NOT-A-PIPE")
print(sys.stdin.buffer.read().decode())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe sizes are Linux's")
def test_a_pipe_on_standard_input_is_widened_and_a_file_is_left_alone(tmp_path: Path) -> None:
    """A pipe holds PIPE_BYTES afterwards, its data unchanged; a file is read as it is."""
    require_postgres_loader()
    piped = subprocess.run(
        [str(BIN / "python"), "-c", SCRIPT],
        input=b"line one\nline two\n",
        capture_output=True,
        timeout=60,
        check=True,
    )
    size, wanted = piped.stdout.decode().splitlines()[0].split()
    assert int(size) == int(wanted) == 1 << 20
    assert piped.stdout.decode().endswith("line one\nline two\n\n")

    path = tmp_path / "input.jsonl"
    path.write_bytes(b"from a file\n")
    with path.open("rb") as source:
        filed = subprocess.run(
            [str(BIN / "python"), "-c", SCRIPT],
            stdin=source,
            capture_output=True,
            timeout=60,
            check=True,
        )
    assert filed.stdout.decode() == "NOT-A-PIPE\nfrom a file\n\n"
