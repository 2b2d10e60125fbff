"""benchmarks/memory_estimate.py runs end to end at its smallest size, and prints the estimate
beside a measured peak for both rows. No ratio is asserted: the numbers live in its output."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "memory_estimate.py"


@pytest.mark.integration
def test_the_memory_benchmark_prints_estimate_and_measured_side_by_side():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--sizes", "1m", "--length", "64"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip().startswith("1m")]
    assert [r[2] for r in rows] == ["no", "yes"]
    for row in rows:
        estimate, measured = float(row[3]), float(row[4])
        assert estimate > 0 and measured > 0
