import itertools

import pytest
import torch

from sftmix_ray.config import EvaluateConfig
from sftmix_ray.data.template import VicunaTemplate
from sftmix_ray.evaluate.benchmarks import load_eval_sets
from sftmix_ray.evaluate.judge import JudgeClient
from sftmix_ray.evaluate.suite import judge_client, run_evaluation

JUDGE = {"base_url": "http://judge.invalid:8000/v1/", "model": "judge-7b", "timeout_s": 7.5,
         "max_retries": 2}
BENCH = {"n": 2, "max_new_tokens": 8}


def _cfg(**changes) -> EvaluateConfig:
    data = {"math": BENCH, "code": {**BENCH, "timeout_s": 3}, "general": BENCH, "batch_size": 4}
    return EvaluateConfig.model_validate({**data, **changes})


@pytest.fixture(autouse=True)
def _no_judge_keys(monkeypatch):
    for name in ("SFTMIX_JUDGE_API_KEY", "OPENAI_API_KEY", "MY_JUDGE_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_no_judge_without_a_judge_config():
    assert judge_client(_cfg(general={**BENCH, "source": "mt_bench"})) is None


def test_no_judge_for_lab_general_even_with_a_judge_config():
    assert judge_client(_cfg(judge=JUDGE)) is None


def test_judge_client_carries_the_configured_endpoint(monkeypatch):
    monkeypatch.setenv("SFTMIX_JUDGE_API_KEY", "sk-judge")
    client = judge_client(_cfg(general={**BENCH, "source": "mt_bench"}, judge=JUDGE))
    assert isinstance(client, JudgeClient)
    assert client.url == "http://judge.invalid:8000/v1/chat/completions"
    assert client.model == "judge-7b" and client.api_key == "sk-judge"
    assert client.timeout_s == 7.5 and client.max_retries == 2


def test_judge_key_is_the_endpoints_own_and_openais_only_for_openai(monkeypatch):
    cfg = _cfg(general={**BENCH, "source": "mt_bench"},
               judge={**JUDGE, "api_key_env": "MY_JUDGE_KEY"})
    assert judge_client(cfg).api_key is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert judge_client(cfg).api_key is None  # a custom endpoint never gets OpenAI's key
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-mine")
    assert judge_client(cfg).api_key == "sk-mine"
    openai = _cfg(general={**BENCH, "source": "mt_bench"},
                  judge={**JUDGE, "base_url": "https://api.openai.com/v1"})
    assert judge_client(openai).api_key == "sk-openai"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from sftmix_ray.data.tokenizer import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture
def model(tiny_model_dir):
    # a fresh copy per test: some tests change a weight
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="module")
def eval_sets():
    return load_eval_sets(_cfg())


def _run(model, tokenizer, eval_sets, cache_dir, cfg=None, eval_id="lab-sets", **kw):
    template = VicunaTemplate(eos=tokenizer.eos_token)
    return run_evaluation(model, tokenizer, cfg or _cfg(), eval_sets, template, eval_id=eval_id,
                          cache_dir=cache_dir, **kw)


def test_first_call_scores_every_ability_and_stores_the_entry(model, tokenizer, eval_sets,
                                                               tmp_path):
    scores, records, hit = _run(model, tokenizer, eval_sets, tmp_path)
    assert hit is False
    assert {"math", "math_flexible", "code", "code_pass_at_1", "general"} <= set(scores)
    assert all(0.0 <= scores[a] <= 1.0 for a in ("math", "code", "general"))
    assert [len(records[a]) for a in ("math", "code", "general")] == [2, 2, 2]
    assert records["general_scorer"] == "offline-reference-f1"
    assert [p.name for p in tmp_path.iterdir()] == [f"{records['eval_key']}.json"]


def test_same_weights_hit_the_cache(model, tokenizer, eval_sets, tmp_path):
    scores, records, _ = _run(model, tokenizer, eval_sets, tmp_path)
    again = _run(model, tokenizer, eval_sets, tmp_path)
    assert again == (scores, records, True)


def test_changed_weight_misses(model, tokenizer, eval_sets, tmp_path):
    first = _run(model, tokenizer, eval_sets, tmp_path)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 0.5
    scores, records, hit = _run(model, tokenizer, eval_sets, tmp_path)
    assert hit is False and records["eval_key"] != first[1]["eval_key"]
    assert len(list(tmp_path.iterdir())) == 2


def test_cache_off_never_hits_nor_writes_and_keeps_the_key(model, tokenizer, eval_sets,
                                                           tmp_path):
    off, some = _cfg(cache=False), ("math", "general")
    first = _run(model, tokenizer, eval_sets, tmp_path, cfg=off, abilities=some)
    second = _run(model, tokenizer, eval_sets, tmp_path, cfg=off, abilities=some)
    assert first[2] is False and second[2] is False
    assert list(tmp_path.iterdir()) == []
    # the switch itself is left out of the key, so turning it on finds the same entry name
    on = _run(model, tokenizer, eval_sets, tmp_path, abilities=some)
    assert on[1]["eval_key"] == first[1]["eval_key"] and on[0] == first[0]


def test_cache_on_without_a_directory_never_hits(model, tokenizer, eval_sets):
    assert _run(model, tokenizer, eval_sets, None, abilities=("math",))[2] is False
    assert _run(model, tokenizer, eval_sets, None, abilities=("math",))[2] is False


@pytest.mark.parametrize("change", [
    {"eval_id": "other-sets"},
    {"cfg": _cfg(math={**BENCH, "max_new_tokens": 7})},
    {"cfg": _cfg(batch_size=3)},
])
def test_settings_are_part_of_the_key(model, tokenizer, eval_sets, tmp_path, change):
    base = _run(model, tokenizer, eval_sets, tmp_path, abilities=("math",))
    other = _run(model, tokenizer, eval_sets, tmp_path, abilities=("math",), **change)
    assert other[2] is False and other[1]["eval_key"] != base[1]["eval_key"]


def test_a_subset_of_abilities_is_its_own_entry(model, tokenizer, eval_sets, tmp_path):
    full = _run(model, tokenizer, eval_sets, tmp_path, abilities=("math", "general"))
    scores, records, hit = _run(model, tokenizer, eval_sets, tmp_path, abilities=("math",))
    assert hit is False and records["eval_key"] != full[1]["eval_key"]
    assert set(scores) == {"math", "math_flexible", "math_ci_low", "math_ci_high", "math_n"}
    assert "code" not in records
    assert scores["math"] == full[0]["math"]  # greedy generation: same outputs either way


def test_other_ranks_return_none_and_never_write(model, tokenizer, eval_sets, tmp_path):
    assert _run(model, tokenizer, eval_sets, tmp_path, rank=1, abilities=("math",)) is None
    assert list(tmp_path.iterdir()) == []
    _run(model, tokenizer, eval_sets, tmp_path, abilities=("math",))
    # on a hit every rank skips generation; only rank 0 gets the result
    assert _run(model, tokenizer, eval_sets, tmp_path, rank=1, abilities=("math",)) is None
    assert _run(model, tokenizer, eval_sets, tmp_path, abilities=("math",))[2] is True


def _judged(server, share: float) -> EvaluateConfig:
    return _cfg(general={**BENCH, "source": "mt_bench"},
                judge={"base_url": server.url, "model": "j", "max_failed_share": share})


def test_a_judge_failure_is_scored_around_and_kept_out_of_the_cache(model, tokenizer, tmp_path):
    from .test_judge import FakeJudge

    grades = itertools.count()  # next() on it is atomic: the server answers grades in parallel

    def first_refused(request):
        return 400 if next(grades) == 0 else "Rating: [[6]]"

    server = FakeJudge(route=first_refused)
    try:
        cfg = _judged(server, share=0.25)  # 1 of 4 grades: at the limit, not over it
        sets = load_eval_sets(cfg, ("general",))
        scores, records, hit = _run(model, tokenizer, sets, tmp_path, cfg=cfg,
                                    abilities=("general",))
        assert hit is False and scores["general"] == 6
        assert scores["general_judge_failures"] == 1 and scores["mt_bench_unparsed"] == 0
        assert sum("HTTP 400" in r.get("error", "") for r in records["general"]) == 1
        assert list(tmp_path.iterdir()) == []  # asking again grades again
        scores, _, hit = _run(model, tokenizer, sets, tmp_path, cfg=cfg, abilities=("general",))
        assert hit is False and scores["general_judge_failures"] == 0
        assert len(list(tmp_path.iterdir())) == 1  # a complete score is kept
    finally:
        server.close()


def test_too_many_judge_failures_fail_the_evaluation(model, tokenizer, tmp_path):
    from sftmix_ray.evaluate.mt_bench import JudgeFailures

    from .test_judge import FakeJudge

    server = FakeJudge([422])
    try:
        cfg = _judged(server, share=0.5)
        sets = load_eval_sets(cfg, ("general",))
        with pytest.raises(JudgeFailures, match=r"of 4 grades failed .* more than "
                                                r"evaluate.judge.max_failed_share = 50.0%"):
            _run(model, tokenizer, sets, tmp_path, cfg=cfg, abilities=("general",))
        assert list(tmp_path.iterdir()) == []
    finally:
        server.close()
