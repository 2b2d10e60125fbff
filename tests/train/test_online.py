"""The online strategy's weight updates (ODM's EXP3, DoReMi's Group-DRO) as properties, and its
training stage: one process, and two gloo workers under DDP and under FSDP, where every rank
must draw the same domains and end with the same weights as one process would."""

import datetime
import os
import traceback
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sftmix_ray.config import ModelConfig, TinyModelConfig, TrainConfig
from sftmix_ray.train.online_loop import OnlineStageData, micro_sizes, train_online_stage
from sftmix_ray.train.online_weights import DomainWeights, draw_domains, smooth
from tests.train.ranks import run_ranks

METHODS = ["exp3", "doremi"]
shares = st.lists(st.floats(0, 10), min_size=2, max_size=5).filter(lambda v: sum(v) > 1e-3)
losses = st.floats(0, 20)


def _trajectory(method, prior, eta, c, rounds, seed):
    """Weights after each of `rounds` updates from seeded random losses (some domains unseen)."""
    rng = np.random.default_rng(seed)
    w = DomainWeights(method, np.array(prior), eta, c)
    out = [w.weights.copy()]
    for _ in range(rounds):
        loss = rng.uniform(0, 8, len(prior))
        loss[rng.random(len(prior)) < 0.2] = np.nan  # a domain not drawn in the interval
        out.append(w.update(loss, rng.uniform(0, 8, len(prior))))
    return out


@settings(max_examples=60, deadline=None)
@given(method=st.sampled_from(METHODS), prior=shares, eta=st.floats(0.01, 20),
       c=st.floats(0, 0.9), rounds=st.integers(0, 30), seed=st.integers(0, 2 ** 16))
def test_weights_stay_on_the_simplex_above_the_floor(method, prior, eta, c, rounds, seed):
    for w in _trajectory(method, prior, eta, c, rounds, seed):
        assert np.all(np.isfinite(w))
        assert abs(w.sum() - 1) < 1e-9
        assert np.all(w >= c / len(prior) - 1e-12), (w, c)


@settings(max_examples=30, deadline=None)
@given(method=st.sampled_from(METHODS), prior=shares, eta=st.floats(0.01, 5),
       c=st.floats(0, 0.5), seed=st.integers(0, 2 ** 16))
def test_same_seed_same_trajectory(method, prior, eta, c, seed):
    a = _trajectory(method, prior, eta, c, 10, seed)
    b = _trajectory(method, prior, eta, c, 10, seed)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    rng1, rng2 = np.random.default_rng(seed), np.random.default_rng(seed)
    assert np.array_equal(draw_domains(a[-1], 64, rng1), draw_domains(a[-1], 64, rng2))


def test_the_prior_is_where_weights_start_and_smoothing_mixes_in_uniform():
    w = DomainWeights("exp3", np.array([3.0, 1.0, 0.0]), 1.0, 0.3)
    assert np.allclose(w.weights, 0.7 * np.array([0.75, 0.25, 0.0]) + 0.1)
    assert np.allclose(smooth([1, 0], 0.0), [1, 0])


def test_doremi_moves_weight_to_the_domain_with_excess_loss():
    w = DomainWeights("doremi", np.ones(3), 1.0, 0.0)
    for _ in range(5):
        w.update([3.0, 1.0, 1.0], [1.0, 1.0, 2.0])  # excess 2, 0, and -1 (clipped to 0)
    assert w.weights[0] > 0.9 and np.isclose(w.weights[1], w.weights[2])
    with pytest.raises(ValueError, match="reference"):
        w.update([1.0, 1.0, 1.0])


@pytest.mark.parametrize("method", METHODS)
def test_no_signal_keeps_exp3_at_the_prior(method):
    """An interval where no domain was drawn: exp3 stays where it was; doremi's step is the
    identity before its smoothing, so it drifts toward uniform (DoReMi's Algorithm 1)."""
    w = DomainWeights(method, np.array([3.0, 1.0]), 1.0, 0.2)
    start = w.weights.copy()
    after = w.update([np.nan, np.nan], [np.nan, np.nan])
    if method == "exp3":
        assert np.allclose(after, start)
    else:
        assert np.allclose(after, smooth(start, 0.2))


def test_exp3_rewards_the_domain_with_the_higher_loss():
    w = DomainWeights("exp3", np.ones(2), 1.0, 0.0)
    for _ in range(10):
        w.update([4.0, 0.5])
    assert w.weights[0] > 0.8


@pytest.mark.parametrize("bad", [dict(method="x"), dict(smoothing=1.0), dict(step_size=0),
                                 dict(prior=[0.0, 0.0])])
def test_bad_settings_are_refused(bad):
    args = {"method": "exp3", "prior": [1.0, 1.0], "step_size": 1.0, "smoothing": 0.1, **bad}
    with pytest.raises(ValueError):
        DomainWeights(args["method"], np.array(args["prior"]), args["step_size"],
                      args["smoothing"])


@settings(max_examples=60, deadline=None)
@given(prior=st.lists(st.integers(0, 30), min_size=2, max_size=4).filter(lambda v: sum(v) > 0),
       epochs=st.integers(1, 3), per=st.integers(1, 9), seed=st.integers(0, 99))
def test_draws_keep_to_the_amounts_distinct_samples_in_nested_order(prior, epochs, per, seed):
    """Equal data: amount × epochs visits, at most the amount's distinct samples (+1 per domain
    where the budget runs out), each domain's a prefix of its order; a domain that saw nothing
    before the budget ran out is never drawn after."""
    from sftmix_ray.train.online_loop import _Draws

    names = [f"d{i}" for i in range(len(prior))]
    pools = {d: _Pool(20 * i, n=50) for i, d in enumerate(names)}
    stage = OnlineStageData("s", pools, {d: np.arange(50) for d in names},
                            dict(zip(names, prior)), sum(prior) * epochs, epochs, {})
    draws, rng = _Draws(stage), np.random.default_rng(seed)
    w = np.random.default_rng(seed + 1).dirichlet(np.ones(len(prior)))
    taken = {d: [] for d in names}
    for n in micro_sizes(stage.draws, per, 1):
        for k, (ids, _) in draws.take(draw_domains(draws.weights(w), n, rng), 0, 1):
            taken[names[k]].append(next(i for i, r in enumerate(pools[names[k]].rows)
                                        if r is ids))
    assert sum(len(t) for t in taken.values()) == stage.draws
    assert sum(prior) <= sum(draws.seen) <= sum(prior) + len(prior)
    for t in taken.values():
        assert sorted(set(t)) == list(range(len(set(t))))  # a prefix of the nested order


@given(draws=st.integers(1, 500), per=st.integers(1, 32), world=st.integers(1, 4))
def test_micro_batches_add_up_to_the_draws(draws, per, world):
    per = per * world
    sizes = micro_sizes(draws, per, world)
    dropped = draws % per if draws % per and draws % per < world else 0
    assert sum(sizes) == draws - dropped and all(world <= n <= per for n in sizes)


# ------------------------------------------------------------------- the stage itself

SPEC = ModelConfig(tiny=TinyModelConfig(hidden_size=32, intermediate_size=64, layers=2, heads=2,
                                        max_positions=128))
TOKENS = SimpleNamespace(bos_token_id=1, eos_token_id=2, pad_token_id=0)
WORLD = 2


class _Pool:
    """A domain's tokenized pool: a distinct token range per domain, so domains differ in loss."""

    def __init__(self, offset: int, n: int = 40):
        rng = np.random.default_rng(offset)
        self.rows = [rng.integers(3 + offset, 13 + offset, size=int(rng.integers(6, 20)))
                     .astype(np.int32) for _ in range(n)]

    def __len__(self):
        return len(self.rows)

    def sample(self, i):
        return self.rows[i], self.rows[i].copy()


def _stage(method: str) -> OnlineStageData:
    pools = {"a": _Pool(0), "b": _Pool(20), "c": _Pool(40)}
    return OnlineStageData(f"online_{method}", pools,
                           {d: np.random.default_rng(i).permutation(len(p))
                            for i, (d, p) in enumerate(pools.items())},
                           {"a": 30, "b": 10, "c": 0}, draws=80, epochs=2,
                           knobs={"method": method, "step_size": 2.0, "smoothing": 0.2,
                                  "warmup": 0.2, "update_every": 2})


def _hp(**kw):
    return TrainConfig(**{"lr": 1e-2, "epochs": 2, "batch_size": 4, "max_length": 64,
                          "seed": 0, **kw})


def _train(method: str, rank: int = 0, world: int = 1, parallel: str | None = None) -> dict:
    from sftmix_ray.train.model import build_model
    from sftmix_ray.train.online_loop import reference_model
    from sftmix_ray.train.parallel import prepare

    hp, device = _hp(), torch.device("cpu")
    core = build_model(SPEC, 64, TOKENS, 0, hp)
    stage = _stage(method)
    reference_model([stage], core, device)
    before = {n: p.detach().clone() for n, p in core.named_parameters()}
    model = core
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(core)
    elif parallel == "fsdp":
        model = prepare(core, core, "fsdp", device)
    epochs = []
    record = train_online_stage(model, stage, hp, 0, index=0, rank=rank, world=world,
                                device=device, on_epoch_end=epochs.append)
    from sftmix_ray.train.parallel import local
    changed = any(not torch.equal(local(p.detach()), local(before[n]))
                  if parallel != "fsdp" else True for n, p in core.named_parameters())
    return {**record, "changed": changed, "epochs": epochs}


@pytest.mark.parametrize("method", METHODS)
def test_an_online_stage_trains_draws_its_budget_and_records_its_trajectory(method):
    r = _train(method)
    online = r["online"]
    assert r["changed"] and np.isfinite(r["loss"])
    assert sum(online["drawn"].values()) == r["samples"] == 80  # amount × epochs, exactly
    # at most the amount's distinct samples (+1 per domain where the budget runs out)
    assert 40 <= sum(online["distinct"].values()) <= 40 + 3
    assert all(0 < online["distinct"][d] <= online["drawn"][d] for d in "ab")
    assert online["drawn"]["c"] > 0  # the floor lets a domain the prior left out be drawn
    hist = online["history"]
    assert hist[0]["step"] == 0 and np.allclose(hist[0]["weights"],
                                                0.8 * np.array([0.75, 0.25, 0]) + 0.2 / 3)
    assert [h["step"] for h in hist[1:]] == list(range(2, r["steps"], 2))
    assert any(not np.allclose(h["weights"], hist[0]["weights"]) for h in hist[1:])
    for h in hist:
        assert abs(sum(h["weights"]) - 1) < 1e-9 and min(h["weights"]) >= 0.2 / 3 - 1e-12
    assert abs(sum(online["mean"].values()) - 1) < 1e-9
    assert ("reference_loss" in hist[1]) == (method == "doremi")
    assert all(any(v is not None for v in h["loss"]) for h in hist[1:])
    assert all(0 < v < 20 for h in hist[1:] for v in h["loss"] if v is not None)
    assert r["epochs"] == [1]  # the middle of two epochs' worth of draws
    assert _train(method)["online"] == online  # deterministic for a seed


def _worker(rank: int, port: int, out) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=120))
    try:
        out.put((rank, {(m, p): _train(m, rank, WORLD, p)["online"]
                        for m in METHODS for p in ("ddp", "fsdp")}))
    except Exception:
        out.put((rank, {"error": traceback.format_exc()}))
    finally:
        dist.destroy_process_group()


def test_two_workers_ddp_and_fsdp_agree_on_the_weights():
    results = run_ranks(_worker, WORLD)
    for key, online in results[0].items():
        assert online == results[1][key], key  # every rank drew alike and holds the same weights
        assert sum(online["drawn"].values()) == 80
        assert 40 <= sum(online["distinct"].values()) <= 43
        assert len(online["history"]) > 2
        # every interval has losses (all-reduced: equal on both ranks, checked above)
        assert all(any(v is not None and v > 0 for v in h["loss"])
                   for h in online["history"][1:])
