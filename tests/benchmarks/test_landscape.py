"""benchmarks/landscape.py: seed repeats averaged with a noise estimate per point; a landscape
measured on another lab (or on none named) refused, or run with a loud warning when asked; the
shipped one is the current lab's; the lab version moves with what determines the lab and not
with the training seed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import landscape  # noqa: E402

from sftmix_ray.config import load_sweep  # noqa: E402
from sftmix_ray.train.lab_base import lab_version  # noqa: E402


def row(math_share, amount, seed, math, strategy="multi_task"):
    return {"ratio": {"math": math_share, "code": 0.0, "general": 1 - math_share},
            "amount": amount, "strategy": strategy, "k": None, "seed": seed, "math": math,
            "code": 0.0, "general": 0.5, "train_seconds": 1.0}


def write(tmp_path, rows, lab):
    path = tmp_path / "land.json"
    path.write_text(json.dumps({"domains": ["math", "code", "general"],
                                "objectives": ["math", "code", "general"],
                                "amount_range": [1000, 4000], "trials": rows,
                                **({"lab": lab} if lab is not None else {})}))
    return path


def test_seed_repeats_are_averaged_per_point_with_their_spread_as_noise(tmp_path):
    rows = [row(1.0, 1000, s, v) for s, v in enumerate([0.2, 0.4, 0.3])] + \
        [row(0.5, 1000, s, v) for s, v in enumerate([0.1, 0.1, 0.1])] + [row(0.0, 4000, 0, 0.9)]
    land = landscape.Landscape.load(write(tmp_path, rows, landscape.current_lab()))
    points = {(p["ratio"]["math"], p["amount"]): p for p in land.points()}
    assert len(points) == 3
    assert points[1.0, 1000]["math"] == pytest.approx(0.3) and points[1.0, 1000]["n"] == 3
    assert points[1.0, 1000]["sd"]["math"] == pytest.approx(0.1)
    assert points[0.0, 4000]["sd"]["math"] is None
    # pooled over the repeated points: (0.02 + 0) / (2 + 2) degrees of freedom
    assert land.noise()["math"] == pytest.approx((0.02 / 4) ** 0.5)
    assert land.noise()["code"] == 0.0
    assert "pooled 0.071" in "\n".join(land.noise_lines())


def test_without_repeats_there_is_no_noise_estimate(tmp_path):
    land = landscape.Landscape.load(write(tmp_path, [row(1.0, 1000, 0, 0.2)],
                                          landscape.current_lab()))
    assert land.noise() == {"math": None, "code": None, "general": None}
    assert "no grid point" in land.noise_lines()[0]


@pytest.mark.parametrize("lab", [None, {"version": "0123456789ab", "base_key": "old"}])
def test_another_labs_landscape_is_refused_naming_both_versions(tmp_path, capsys, lab):
    path = write(tmp_path, [row(1.0, 1000, 0, 0.2)], lab)
    with pytest.raises(SystemExit) as stop:
        landscape.Landscape.load(path)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    current = landscape.current_lab()
    assert current["version"] in err and current["base_key"] in err
    assert ("0123456789ab" in err) if lab else ("no lab version" in err)
    assert landscape.REMEASURE in err and "--allow-stale-lab" in err
    land = landscape.Landscape.load(path, allow_stale_lab=True)
    assert land.stale and "WARNING" in capsys.readouterr().err


def test_the_shipped_landscape_is_the_current_labs_and_the_benchmarks_run_on_it():
    """The data file in the repository was measured on the current lab: the benchmarks run on
    it without a warning (another lab's is refused: the test above)."""
    data = json.loads((ROOT / "benchmarks" / "data" / "lab_landscape.json").read_text())
    assert data["lab"]["version"] == landscape.current_lab()["version"]
    script = ROOT / "benchmarks" / "search_efficiency.py"
    ran = subprocess.run([sys.executable, str(script), "--seeds", "1", "--samplers", "random"],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "WARNING" not in ran.stderr + ran.stdout
    assert "random: median" in ran.stdout and "picked in hindsight" in ran.stdout


def test_the_lab_version_moves_with_the_lab_not_with_the_seed():
    sweep, _ = load_sweep(ROOT / "sweeps" / "landscape_lab.yaml")
    base = lab_version(sweep)
    assert base["base_key"] is not None
    seeded = sweep.model_copy(update={"train": sweep.train.model_copy(update={"seed": 7})})
    assert lab_version(seeded) == base
    faster = sweep.model_copy(update={"train": sweep.train.model_copy(update={"lr": 1e-3})})
    assert lab_version(faster)["version"] != base["version"]
    assert lab_version(faster)["base_key"] == base["base_key"]
    # the shipped base model is the one the landscape sweep's lab names
    shipped = ROOT / "sftmix_ray" / "train" / "lab_base_shipped" / f"lab-base-{base['base_key']}"
    assert shipped.is_dir()


def test_the_export_names_the_lab_and_refuses_a_sweep_of_an_older_base_model():
    import export_landscape

    sweep_file = ROOT / "sweeps" / "landscape_lab.yaml"
    current = lab_version(load_sweep(sweep_file)[0])
    lab = export_landscape.measured_lab(sweep_file, {"sftmix.base_model": current["base_key"],
                                                     "sftmix.data_key": "d1"})
    assert lab == {**current, "data_key": "d1"}
    with pytest.raises(SystemExit, match="older lab"):
        export_landscape.measured_lab(sweep_file, {"sftmix.base_model": "0" * 20})
    assert export_landscape._seed({"seed": "2"}) == 2 and export_landscape._seed({}) is None
    assert export_landscape.planned_of(sweep_file) == 120  # 40 grid points × 3 seeds


def test_a_landscape_exported_mid_sweep_says_how_much_of_it_it_holds(tmp_path):
    rows = [row(1.0, 1000, 0, 0.2), row(0.5, 1000, 0, 0.1), row(1.0, 1000, 1, 0.3)]
    path = write(tmp_path, rows, None)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "planned": 6}))
    land = landscape.Landscape.load(path, check_lab=False)
    head = land.noise_lines()[0]
    assert "measured 3 of the sweep's 6 trials (seed 0: 2, seed 1: 1)" in head
    assert "sftmix resume" in head
    assert land.noise_lines()[1].startswith("noise between seeds (1 of 2 grid points")
    path.write_text(json.dumps({**data, "planned": 3}))  # complete: nothing to say
    assert landscape.Landscape.load(path, check_lab=False).noise_lines()[0].startswith("noise")


def test_the_landscape_measures_the_quickstarts_lab():
    """The benchmarks' target is the quickstart's setting: its domains, model, training and
    evaluation, only searched on a grid with seed repeats (it once kept an older lr)."""
    land, _ = load_sweep(ROOT / "sweeps" / "landscape_lab.yaml")
    quick, _ = load_sweep(ROOT / "sweeps" / "quickstart.yaml")
    for part in ("domains", "model", "train", "evaluate", "tracking"):
        assert getattr(land, part) == getattr(quick, part), part
    assert land.search.seeds == [0, 1, 2] and land.search.algorithm == "grid"
