"""The overlap benchmark runs end to end on a small population and prints its ratio."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_overlap.py"


@pytest.mark.slow
def test_overlap_benchmark_prints_each_measure_and_the_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--users", "5000", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    line = re.MULTILINE
    assert re.search(r"^users: 5,000  file: \d+\.\d MB  link: 20 MB/s", out, line), out
    for measure in ("download alone", "parse alone", "serial sum", "overlapped"):
        assert re.search(rf"^{measure} +\d+\.\d\d s", out, line), out
    ratio = r"^ratio overlapped/max\(download, parse\): \d+\.\d\d \(target <= 1\.1\)"
    assert re.search(ratio, out, line), out
