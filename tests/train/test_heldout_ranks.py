"""The held-out loss and an lm-eval ability under FSDP across two gloo processes on CPU: each
rank computes the loss of its share of the held-out samples inside `inference_weights` and one
all_gather_object joins them (the same numbers as one process computing them all); rank 0 alone
runs lm-eval on the full weights it holds there while rank 1 waits at the next collective, and
training goes on afterwards on both ranks."""

import datetime
import math
import os
import traceback
from pathlib import Path

import pytest
import torch

from sftmix_ray.config import ModelConfig, TinyModelConfig, TrainConfig
from tests.train.ranks import run_ranks

SPEC = ModelConfig(tiny=TinyModelConfig(hidden_size=32, intermediate_size=64, layers=2, heads=2,
                                        max_positions=256))
WORLD = 2


def _tokenizer(tmp: str):
    from sftmix_ray.config.presets import LAB_FORMATS
    from sftmix_ray.data import lab
    from sftmix_ray.data.formats import to_messages
    from sftmix_ray.data.template import VicunaTemplate
    from sftmix_ray.data.tokenizer import train_lab_tokenizer

    texts = [t for d in lab.LAB_DOMAINS for r in lab.lab_train(d, 100)
             for t, _ in VicunaTemplate().segments(to_messages(r, LAB_FORMATS[d]))]
    return train_lab_tokenizer(texts, 300, Path(tmp))


def _held(tok):
    from sftmix_ray.config.presets import LAB_FORMATS
    from sftmix_ray.data import lab
    from sftmix_ray.data.formats import to_messages
    from sftmix_ray.data.template import VicunaTemplate
    from sftmix_ray.data.tokenize import tokenize_conversations

    out = {}
    for d in ("math", "general"):
        rows = [to_messages(r, LAB_FORMATS[d]) for r in lab.lab_eval(d, 5)]  # 3 + 2 a rank
        td, _ = tokenize_conversations(rows, tok, VicunaTemplate(), 160)
        out[d] = [td.sample(i) for i in range(len(td))]
    return out


def _job(rank: int, tmp: str) -> dict:
    from sftmix_ray.config.abilities import LmEvalAbility
    from sftmix_ray.evaluate.lm_eval_run import score_lm_eval
    from sftmix_ray.train.heldout import heldout_metrics, heldout_pairs
    from sftmix_ray.train.loop import StageData, train_stage
    from sftmix_ray.train.model import build_model
    from sftmix_ray.train.parallel import inference_weights, prepare
    from sftmix_ray.train.speed import resolve_speed, train_module

    tok = _tokenizer(os.path.join(tmp, f"tok{rank}"))
    held = _held(tok)
    hp = TrainConfig(lr=1e-2, epochs=1, batch_size=2, max_length=160, seed=0)
    device = torch.device("cpu")
    speed = resolve_speed(hp, device)
    core = build_model(SPEC, len(tok), tok, 0, hp)
    model = prepare(train_module(core, speed), core, "fsdp", device)
    stage = StageData("s", held["math"] + held["general"], 1)
    train_stage(model, stage, hp, tok.pad_token_id, index=0, rank=rank, world=WORLD,
                device=device, speed=speed)
    out = {}
    with inference_weights(model):
        pairs = heldout_pairs(core, held, tok.pad_token_id, rank=rank, world=WORLD,
                              device=device)
        if rank == 0:  # the same model, every sample in one process
            out["alone"] = heldout_pairs(core, held, tok.pad_token_id, rank=0, world=1,
                                         device=device)
            out["lm_eval"] = score_lm_eval(core, tok, {"mc": LmEvalAbility(
                task="sftmix_lab_math_mc", limit=3)})[0]
    out["pairs"], out["metrics"] = pairs, heldout_metrics(pairs)
    # both ranks train on afterwards: the collectives still line up
    out["after"] = train_stage(model, StageData("t", held["math"], 1), hp, tok.pad_token_id,
                               index=1, rank=rank, world=WORLD, device=device,
                               speed=speed)["loss"]
    return out


def _worker(rank: int, port: int, tmp: str, out) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_DATASETS_OFFLINE="1",
                      HF_HUB_OFFLINE="1")
    dist.init_process_group("gloo", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=180))
    try:
        out.put((rank, _job(rank, tmp)))
    except Exception:  # the parent reads the failure instead of waiting for the timeout
        out.put((rank, {"error": traceback.format_exc()}))
    finally:
        dist.destroy_process_group()


@pytest.mark.integration
def test_heldout_loss_and_lm_eval_under_fsdp_on_two_ranks(tmp_path):
    results = run_ranks(_worker, WORLD, str(tmp_path))
    r0, r1 = results[0], results[1]
    assert r0["pairs"] == r1["pairs"]  # the gathered sums are every rank's
    for d in ("math", "general"):
        assert len(r0["pairs"][d]) == 5
        for (a, n), (b, m) in zip(r0["pairs"][d], r0["alone"][d]):
            assert n == m and a == pytest.approx(b, rel=1e-5)
        low, value, high = (r0["metrics"][f"loss_{d}{s}"] for s in ("_ci_low", "", "_ci_high"))
        assert 0 < low <= value <= high
    assert 0.0 <= r0["lm_eval"]["mc"] <= 1.0
    assert all(math.isfinite(r["after"]) for r in (r0, r1))
