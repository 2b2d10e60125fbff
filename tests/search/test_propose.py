"""`sftmix propose` on sweeps written to a real MLflow store: the proposals, their predictions and
reasons, the surrogate's quality beside the noise, and a ready sweep file; bad input exits 2
naming what is wrong. And the surrogate options of a sweep file are checked at load."""

import pytest
import yaml
from typer.testing import CliRunner

from sftmix_ray.cli import app
from sftmix_ray.config import ConfigError, load_sweep
from tests.constructed import SPACE, log_sweep, points


@pytest.fixture
def sweep_file(write_sweep):
    """The conftest's small lab sweep, its pools large enough for the constructed space."""
    lab = {"math": "gsm8k", "code": "alpaca", "general": "sharegpt"}
    return write_sweep(domains={d: {"source": "lab", "format": f, "pool": 1000}
                                for d, f in lab.items()})


def _sweep_data(path):
    return yaml.safe_load(path.read_text())


def test_propose_writes_a_ready_sweep_from_a_logged_sweep(tmp_path, sweep_file):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    target = log_sweep(uri, "sftmix-target", points(12), sweep=_sweep_data(sweep_file),
                       seeds=(0, 1))
    log_sweep(uri, "sftmix-proxy", points(20, seed=3), level=0.5)
    out = tmp_path / "proposed.yaml"
    res = CliRunner().invoke(app, ["propose", "--from", target, "--proxy", "sftmix-proxy@0.25",
                                   "--n", "3", "--out", str(out), "--tracking-uri", uri,
                                   "--constraints", "general:0.2"])
    assert res.exit_code == 0, res.output
    assert res.output.count("exploitation") + res.output.count("exploration") >= 3
    assert "CV RMSE" in res.output and "seed noise" in res.output
    assert "24 (+20 proxy)" in res.output  # 12 points × 2 seeds, and the proxy's 20
    sweep, space = load_sweep(out)
    assert len(sweep.search.warm_start) == 3 and sweep.search.num_samples >= 3
    assert sweep.name.endswith("_proposed") and sweep.search.constraints == {"general": 0.2}
    assert (tmp_path / "proposed.space.yaml").is_file()  # the space the sweep logged


def test_propose_with_a_sweep_file_keeps_its_space(tmp_path, sweep_file):
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(SPACE))
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    log_sweep(uri, "plain", points(10))
    out = tmp_path / "p.yaml"
    res = CliRunner().invoke(app, ["propose", "--from", "plain", "--sweep", str(sweep_file),
                                   "--n", "2", "--out", str(out), "--tracking-uri", uri])
    assert res.exit_code == 0, res.output
    sweep, _ = load_sweep(out)
    assert len(sweep.search.warm_start) == 2


@pytest.mark.parametrize("args,message", [
    (["--from", "nothing-here"], "neither a run id nor an experiment"),
    (["--from", "plain", "--constraints", "speed:1", "--sweep", "SWEEP"],
     "--constraints: 'speed'"),
    (["--from", "plain", "--proxy", "plain@2"], "fidelity must be in (0, 1]"),
    (["--from", "plain"], "give the target sweep with --sweep FILE"),
])
def test_bad_input_exits_2_naming_it(tmp_path, sweep_file, args, message):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    log_sweep(uri, "plain", points(6))
    args = [str(sweep_file) if a == "SWEEP" else a for a in args]
    res = CliRunner().invoke(app, ["propose", *args, "--out", str(tmp_path / "o.yaml"),
                                   "--tracking-uri", uri])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "o.yaml").exists()


@pytest.mark.parametrize("search,problem", [
    ({"algorithm": "tpe", "batch_size": 4}, "search.batch_size: a surrogate-search option"),
    ({"algorithm": "tpe", "proxies": [{"sweep": "x"}]}, "search.proxies: a surrogate-search"),
    ({"algorithm": "surrogate", "proxies": [{"fidelity": 0.5}]}, "search.proxies.0: give "
                                                                 "exactly one of 'sweep'"),
    ({"algorithm": "surrogate", "proxies": [{"sweep": "x", "fidelity": 2}]},
     "search.proxies.0.fidelity"),
])
def test_surrogate_options_are_checked_at_load(write_sweep, tmp_path, search, problem):
    base = {"space": str(tmp_path / "space.yaml"), "num_samples": 2, "seed": 0}
    with pytest.raises(ConfigError) as exc:
        load_sweep(write_sweep(search={**base, **search}))
    assert any(p.startswith(problem) for p in exc.value.problems), exc.value.problems


def test_an_unreadable_proxy_stops_the_run_before_anything_starts(write_sweep, tmp_path):
    import ray

    path = write_sweep(search={"space": str(tmp_path / "space.yaml"), "num_samples": 2,
                               "algorithm": "surrogate", "proxies": [{"sweep": "no-such-run"}]})
    before = ray.is_initialized()
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 2 and "search.proxies[0]: " in res.output, res.output
    assert ray.is_initialized() == before and not (tmp_path / "runs").exists()


def test_propose_from_an_experiment_reads_its_newest_sweep(tmp_path, sweep_file):
    """`--from` takes what its help says: a run id or an experiment's name."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    log_sweep(uri, "sftmix-target", points(12), sweep=_sweep_data(sweep_file))
    out = tmp_path / "p.yaml"
    res = CliRunner().invoke(app, ["propose", "--from", "sftmix-target", "--n", "3", "--out",
                                   str(out), "--tracking-uri", uri])
    assert res.exit_code == 0, res.output
    assert "12 (+0 proxy)" in res.output
    assert len(load_sweep(out)[0].search.warm_start) == 3


@pytest.mark.parametrize("n_points,seed", [(4, 0), (8, 2)])
def test_proposals_are_distinct_spread_and_inside_the_score_range(n_points, seed):
    """A batch is not near-copies of one point (the quickstart's three proposals differed in
    amount only), and no predicted interval runs past [0, 1]. With the penalty radius at 0.1
    these landscapes gave batches 0.24 and 0.27 apart and intervals from -0.17 and -0.14."""
    import numpy as np

    from sftmix_ray.analysis.records import Record
    from sftmix_ray.analysis.surrogate import Encoder, Surrogate
    from sftmix_ray.config.space import SearchSpace
    from sftmix_ray.search.proposals import propose
    from tests.constructed import scores

    space = SearchSpace.model_validate(SPACE)
    objectives = {"math": "max", "code": "max", "general": "max"}
    records = [Record(p, scores(p), 1.0, run_id=str(i))
               for i, p in enumerate(points(n_points, seed=seed))]
    measured = np.array([[r.values[o] for o in objectives] for r in records])
    batch = propose(Surrogate(space, list(objectives), records), space, objectives, 4,
                    measured=measured, seed=0)
    X = Encoder(space).matrix([p.point for p in batch])
    gaps = [np.linalg.norm(X[i] - X[j]) for i in range(4) for j in range(i + 1, 4)]
    assert len(batch) == 4 and min(gaps) > 0.5, gaps
    for p in batch:
        for o in objectives:
            low, high = p.interval(o)
            assert 0.0 <= low <= p.mean[o] <= high <= 1.0, (o, low, p.mean[o], high)


def test_a_surrogate_no_better_than_the_mean_explores():
    from sftmix_ray.search.proposal_file import exploring

    knows = {"cv_rmse": 0.05, "data_std": 0.2}
    blind = {"cv_rmse": 0.25, "data_std": 0.2}
    assert exploring({"math": knows, "code": knows}, 4) == 0
    assert exploring({"math": knows, "code": blind}, 4) == 2
    assert exploring({"math": blind, "code": blind}, 4) == 4
    assert exploring({"math": {"cv_rmse": None, "data_std": None}}, 3) == 3
