"""The sync benchmark runs end to end on a small population and prints its ratios."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_sync.py"


@pytest.mark.slow
def test_benchmark_prints_rates_ratios_rss_and_api_calls() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--users", "20000", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    line = re.MULTILINE
    for mode in ("tap", "batch"):
        assert re.search(rf"^ratio {mode}/floor: \d+\.\d\d \(target <= [\d.]+\)", out, line), out
        assert re.search(rf"^{mode} +20,000 rows .* rows/s .*\d+ API calls", out, line), out
    assert re.search(r"^floor +20,000 rows .* rows/s", out, line), out
    assert re.search(r"^peak RSS per-record tap: \d+ MB", out, line), out
