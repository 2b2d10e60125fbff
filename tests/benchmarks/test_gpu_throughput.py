"""benchmarks/gpu_throughput.py runs end to end at its tiny size on CPU (the GPU node is where
it measures; a broken path should not be found there first), and our rows import nothing a bare
GPU node may lack. No timing is asserted: timings live in the benchmark's own output."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_throughput.py"


def test_the_gpu_benchmark_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--size", "tiny", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"sftmix grouped (before)", "sftmix trial (GPU defaults)",
                            "HF Trainer group_by_length", "generate float32",
                            "generate bfloat16"}
    for name, r in results.items():
        assert r["tokens"] > 0 and r["seconds"] > 0, name
        if not name.startswith("HF"):
            assert r["heavy_modules"] == [], name
    trial, before = results["sftmix trial (GPU defaults)"], results["sftmix grouped (before)"]
    assert trial["options"]["packing"] and not before["options"]["packing"]
    assert trial["tokens"] == before["tokens"] == results["HF Trainer group_by_length"]["tokens"]
    assert abs(trial["loss"] - before["loss"]) < 0.05  # the same data, learned alike
    for line in ("trial / HF Trainer tokens/s", "generation bf16 / float32"):
        assert line in proc.stdout
