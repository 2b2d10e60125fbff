"""Evaluation dtype: generation runs on a bf16 copy when asked (auto: on GPUs only), and what was
trained stays as it was, bit for bit and in float32."""

import torch

from sftmix_ray.data.template import VicunaTemplate
from sftmix_ray.evaluate.generate import Sampling, generate
from sftmix_ray.evaluate.precision import generation_dtype, generation_model

PROMPTS = [VicunaTemplate().prompt(q) for q in ["What is 2+3?", "Say hello."]]


def _load(path):
    from transformers import AutoModelForCausalLM

    from sftmix_ray.data.tokenizer import load_tokenizer

    return AutoModelForCausalLM.from_pretrained(str(path)), load_tokenizer(str(path))


def test_auto_is_float32_on_cpu():
    model = torch.nn.Linear(2, 2)
    assert generation_dtype("auto", model) == "float32"
    assert generation_dtype("bfloat16", model) == "bfloat16"


def test_weights_that_are_bf16_already_generate_in_bf16_whatever_is_asked():
    """FSDP trained in bf16 unsharded its weights in bf16: a float32 copy of them would be
    named float32 in the records and the cache key, but hold bf16 values."""
    model = torch.nn.Linear(2, 2).to(torch.bfloat16)
    assert generation_dtype("float32", model) == generation_dtype("auto", model) == "bfloat16"


def test_generating_in_bf16_leaves_the_trained_weights_untouched(tiny_model_dir, tmp_path):
    model, tok = _load(tiny_model_dir)
    before = {n: t.clone() for n, t in model.state_dict().items()}
    with generation_model(model, "bfloat16") as gen:
        assert {p.dtype for p in gen.parameters()} == {torch.bfloat16}
        texts = generate(gen, tok, PROMPTS, Sampling(max_new_tokens=8))
    assert len(texts) == len(PROMPTS)
    after = model.state_dict()
    assert all(after[n].dtype == torch.float32 and torch.equal(after[n], t)
               for n, t in before.items())
    # and what is saved afterwards is the float32 model, as trained
    model.save_pretrained(str(tmp_path / "saved"))
    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(str(tmp_path / "saved"))
    assert all(torch.equal(saved.state_dict()[n], t) for n, t in before.items())
    with generation_model(model, "float32") as same:  # nothing to cast: the model as it is
        assert all(p.data_ptr() == q.data_ptr() for p, q in zip(same.parameters(),
                                                                model.parameters()))


def test_the_generation_dtype_is_part_of_the_evaluation_key(tiny_model_dir, tmp_path,
                                                            monkeypatch):
    from sftmix_ray.config import BenchConfig, EvaluateConfig
    from sftmix_ray.evaluate import suite

    model, tok = _load(tiny_model_dir)
    seen = []

    def fake_key(weights, settings):  # records the settings the cache would key on
        seen.append(settings)
        return f"k{len(seen)}"

    cfg = EvaluateConfig(math=BenchConfig(n=1), code={"n": 1}, general=BenchConfig(n=1))
    monkeypatch.setattr(suite, "eval_key", fake_key)
    for dtype in ("float32", "bfloat16"):  # cached entries: only the keys are looked at
        suite.EvalCache(tmp_path).put(f"k{len(seen) + 1}", {"math": 0.5}, {})
        hit = suite.run_evaluation(model, tok, cfg.model_copy(update={"dtype": dtype}), {},
                                   VicunaTemplate(), eval_id="e", cache_dir=tmp_path,
                                   abilities=["math"], weights_id="w")
        assert hit[2] is True
    assert "generation_dtype" not in seen[0] and seen[1]["generation_dtype"] == "bfloat16"
    assert "dtype" not in seen[0]["evaluate"]  # float32 keys are the ones from before
