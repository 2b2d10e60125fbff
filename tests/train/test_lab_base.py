"""The lab base model: pretrained once per content key, deterministic for its seed, and what a lab
trial starts from."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sftmix_ray.config import LabPretrainConfig, ModelConfig, TinyModelConfig
from sftmix_ray.data.prepare import _lab_base_tokenizer
from sftmix_ray.data.tokenizer import load_tokenizer
from sftmix_ray.train.lab_base import build_lab_base, ensure_lab_base, lab_base_key
from sftmix_ray.train.model import build_model


def _model(**pretrain) -> ModelConfig:
    cfg = LabPretrainConfig(**{"docs": 120, "batch_size": 16, **pretrain})
    return ModelConfig(tiny=TinyModelConfig(hidden_size=32, intermediate_size=64, layers=1,
                                            heads=2, max_positions=128, pretrain=cfg),
                       lab_vocab_size=400)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return str(_lab_base_tokenizer(_model(), tmp_path_factory.mktemp("tok")))


def _weights(directory) -> dict:
    return load_file(str(directory / "model.safetensors"))


def test_the_build_is_deterministic_for_a_seed(tokenizer_dir, tmp_path):
    model = _model()
    first = build_lab_base(model, tokenizer_dir, tmp_path / "a", threads=1)
    second = build_lab_base(model, tokenizer_dir, tmp_path / "b", threads=1)
    build_lab_base(_model(seed=1), tokenizer_dir, tmp_path / "c", threads=1)
    a, b, c = _weights(tmp_path / "a"), _weights(tmp_path / "b"), _weights(tmp_path / "c")
    assert first["loss"] == second["loss"] and first["tokens"] == second["tokens"] > 0
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_built_once_then_from_the_cache(tokenizer_dir, tmp_path):
    model = _model()
    said = []
    first = ensure_lab_base(model, tokenizer_dir, tmp_path, threads=1, say=said.append)
    again = ensure_lab_base(model, tokenizer_dir, tmp_path, threads=1, say=said.append)
    assert first.built and not again.built and first.path == again.path
    assert len(said) == 1 and first.key in said[0]
    assert again.info == first.info and first.info["steps"] > 0
    # what determines the weights is in the key; the rest of the config is not
    assert lab_base_key(_model(docs=121), tokenizer_dir) != first.key
    assert lab_base_key(_model(lr=1e-3), tokenizer_dir) != first.key
    assert lab_base_key(model, tokenizer_dir + "x") != first.key


def test_pretraining_learns_and_trials_start_from_it(tokenizer_dir, tmp_path):
    model = _model(docs=400, epochs=2, row_tokens=32)
    base = ensure_lab_base(model, tokenizer_dir, tmp_path, threads=1)
    tok = load_tokenizer(tokenizer_dir)
    random_init = build_model(model, len(tok), tok, seed=0)
    started = build_model(model, len(tok), tok, seed=0, base=base.path)
    stored = _weights(tmp_path / f"lab-base-{base.key}")
    for name, param in started.named_parameters():
        if name in stored:
            assert torch.equal(param.detach(), stored[name])
    changed = [n for n, p in random_init.named_parameters()
               if n in stored and not torch.equal(p.detach(), stored[n])]
    assert changed
    assert base.info["loss"] < 5.0  # ln(400) ≈ 6.0 is a uniform guess over the vocabulary


def test_no_base_for_hub_models_or_pretrain_null(tokenizer_dir, tmp_path):
    scratch = ModelConfig(tiny=TinyModelConfig(pretrain=None))
    assert ensure_lab_base(scratch, tokenizer_dir, tmp_path) is None
    assert ensure_lab_base(ModelConfig(name="some/model"), tokenizer_dir, tmp_path) is None


def test_config_refuses_a_base_with_a_foreign_tokenizer():
    with pytest.raises(ValueError, match="pretrain: null"):
        ModelConfig(tiny=TinyModelConfig(), tokenizer="gpt2")
    with pytest.raises(ValueError, match="unknown web text kinds"):
        LabPretrainConfig(shares={"novels": 1.0})
    with pytest.raises(ValueError, match="at least one"):
        LabPretrainConfig(shares={"facts": 0.0})


def test_a_shipped_base_is_copied_under_its_key_not_built(tokenizer_dir, tmp_path, monkeypatch):
    from sftmix_ray.train import lab_base

    model = _model()
    shipped = tmp_path / "shipped"
    made = ensure_lab_base(model, tokenizer_dir, shipped, threads=1)  # what the script ships
    monkeypatch.setattr(lab_base, "SHIPPED", shipped)
    assert lab_base.lab_base_at_hand(model, tokenizer_dir, tmp_path / "cache")  # no build
    assert not lab_base.lab_base_at_hand(_model(seed=1), tokenizer_dir, tmp_path / "cache")
    said = []
    base = ensure_lab_base(model, tokenizer_dir, tmp_path / "cache", threads=1, say=said.append)
    assert not base.built and base.key == made.key and "shipped" in said[0]
    assert base.path != made.path and base.info == made.info
    a, b = _weights(Path(made.path)), _weights(Path(base.path))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # another key is built, whatever is shipped
    other = ensure_lab_base(_model(seed=1), tokenizer_dir, tmp_path / "cache", threads=1)
    assert other.built and other.key != made.key


def test_the_quickstart_base_is_shipped_under_its_current_key(tmp_path):
    """A fresh clone's quickstart copies its base instead of building it for five minutes. A
    change to the lab, the tiny model or its pretraining changes the key: ship the base again
    (`scripts/ship_lab_base.py`), or the quickstart silently pays the build."""
    from sftmix_ray.config import load_sweep
    from sftmix_ray.train.lab_base import INFO_FILE, SHIPPED

    sweep, _ = load_sweep(Path(__file__).parents[2] / "sweeps" / "quickstart.yaml")
    key = lab_base_key(sweep.model, str(_lab_base_tokenizer(sweep.model, tmp_path)))
    shipped = SHIPPED / f"lab-base-{key}"
    assert (shipped / INFO_FILE).is_file(), (
        f"no shipped lab base under the quickstart's key {key} (shipped: "
        f"{sorted(p.name for p in SHIPPED.glob('lab-base-*'))}): run scripts/ship_lab_base.py")
    tok = load_tokenizer(str(_lab_base_tokenizer(sweep.model, tmp_path)))
    started = build_model(sweep.model, len(tok), tok, seed=0, base=str(shipped))
    stored = _weights(shipped)
    assert all(torch.equal(p.detach(), stored[n]) for n, p in started.named_parameters()
               if n in stored) and stored
