"""`sftmix eval --ability NAME=lm_eval:TASK[@METRIC,FILTER]` outside a sweep: lm-eval tasks (the
lab's and one from --include-path) scored on a local model with intervals, records and an MLflow
run; the same problems scored by sftmix's own lab math and by lm-eval's lab math task agree
problem by problem; a bad spec, an unknown task or a missing directory exits 2 naming the
option, before any model is loaded."""

import json
import shutil
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from sftmix_ray.cli import app
from sftmix_ray.evaluate.lm_eval_run import LAB_TASKS

LAB_MATH = "labmath=lm_eval:sftmix_lab_math@exact_match,strict-match"


def task_dir(tmp_path: Path) -> Path:
    """A user's own task YAML beside the Python its !function lines name: the lab math task
    renamed, as include_path finds it."""
    out = tmp_path / "tasks"
    out.mkdir(exist_ok=True)
    shutil.copy(LAB_TASKS / "lab_docs.py", out / "lab_docs.py")
    text = (LAB_TASKS / "sftmix_lab_math.yaml").read_text()
    (out / "my_lab_math.yaml").write_text(text.replace("task: sftmix_lab_math",
                                                       "task: my_lab_math"))
    return out


N = 8  # problems scored; the model below learned the first half of them by heart


@pytest.fixture(scope="module")
def math_model_dir(tmp_path_factory, tiny_model_dir):
    """A small Llama trained on lab math (the lab tokenizer of tiny_model_dir), plus the answers
    of the first N // 2 held-out problems it is scored on, so that its answers read '#### N' and
    both verdicts occur: the agreement below is then not that of two empty extractions."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sftmix_ray.config.presets import LAB_FORMATS
    from sftmix_ray.data import lab
    from sftmix_ray.data.formats import to_messages
    from sftmix_ray.data.template import VicunaTemplate
    from sftmix_ray.data.tokenize import tokenize_conversations
    from sftmix_ray.data.tokenizer import load_tokenizer
    from sftmix_ray.train.loop import collate

    out = tmp_path_factory.mktemp("math-model")
    tok = load_tokenizer(str(tiny_model_dir))
    rows = lab.lab_train("math", 400) + lab.lab_eval("math", N // 2) * 10
    td, _ = tokenize_conversations([to_messages(r, LAB_FORMATS["math"]) for r in rows], tok,
                                   VicunaTemplate(), 160)
    samples = [td.sample(i) for i in range(len(td))]
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=True))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for epoch in range(6):
        order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(samples), 16):
            ids, labels, mask = collate([samples[j] for j in order[i:i + 16]], tok.pad_token_id)
            model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            opt.step()
            opt.zero_grad()
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def _eval(tmp_path, model_dir, *extra):
    return CliRunner().invoke(app, [
        "eval", "--model", str(model_dir), "--out", str(tmp_path / "out"),
        "--cache-dir", str(tmp_path / "cache"),
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *extra])


def test_eval_scores_lm_eval_abilities_and_agrees_with_the_lab_math_scorer(tmp_path,
                                                                            math_model_dir):
    result = _eval(tmp_path, math_model_dir, "--n", str(N), "--benchmarks", "lab_math",
                   "--max-new-tokens", "96",  # the lab task's max_gen_toks
                   "--ability", LAB_MATH, "--ability", "mc=lm_eval:sftmix_lab_math_mc",
                   "--ability", "mine=lm_eval:my_lab_math@exact_match,strict-match",
                   "--include-path", str(task_dir(tmp_path)))
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    for name in ("math", "labmath", "mc", "mine"):
        assert scores[f"{name}_n"] == N
        assert scores[f"{name}_ci_low"] <= scores[name] <= scores[f"{name}_ci_high"], name
    assert scores["labmath"] == scores["mine"]  # the same task under another name
    assert scores["labmath_stderr"] >= 0 and "labmath" in result.output
    records = json.loads((tmp_path / "out" / "eval_records.json").read_text())
    assert {r["value"] for r in records["mc"]} <= {0.0, 1.0}
    assert sum(r["value"] for r in records["mc"]) / N == pytest.approx(scores["mc"])
    agree(records["math"], records["labmath"])
    assert 0 < sum(r["correct"] for r in records["math"]) < N  # both verdicts compared
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["sftmix-eval"])
    run = runs.iloc[0]
    assert run["params.labmath.source"] == "lm_eval:sftmix_lab_math"
    assert run["params.labmath.metric"] == "exact_match,strict-match"
    assert run["metrics.mc"] == scores["mc"] and run["metrics.mine_n"] == N


def agree(ours: list[dict], theirs: list[dict]) -> None:
    """sftmix's lab math records and lm-eval's, problem by problem: the same greedy generation
    (lm-eval keeps the text before its stop string '</s>', with the leading space the tokenizer
    decodes; sftmix strips both), the same answer read after '#### ' (lm-eval's regex filter,
    sftmix's strict extraction) and the same verdict. They agree because lm-eval's prompts
    start with the BOS sftmix prepends (lm_eval_run.with_bos); without it, on the lab's
    tokenizer, half of these generations differed."""
    from sftmix_ray.evaluate.math import extract_strict

    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert a["reference"] == b["target"]
        assert a["output"] == b["output"].removeprefix(" ").rstrip().split("</s>")[0]
        assert (a["extracted_strict"] or "[invalid]") == b["response"]
        assert extract_strict(b["output"]) == a["extracted_strict"]
        assert bool(a["correct"]) == (b["value"] == 1.0)


@pytest.mark.parametrize("args,expected", [
    (["--ability", "labmath"], "--ability: 'labmath' is not NAME=lm_eval:TASK[@METRIC,FILTER]"),
    (["--ability", "labmath=mmlu"], "--ability: 'labmath=mmlu' is not NAME=lm_eval:TASK"),
    (["--ability", "labmath=lm_eval:sftmix_lab_mth"],
     "--ability labmath: lm-eval has no task 'sftmix_lab_mth' (built-in, the lab's, or in "
     "include_path); did you mean 'sftmix_lab_math'?"),
    (["--ability", "math=lm_eval:sftmix_lab_math"], "--ability math: a name of letters"),
    (["--ability", "x=lm_eval:sftmix_lab_math@acc"], "--ability x: metric: 'acc' is not"),
    (["--ability", LAB_MATH, "--ability", LAB_MATH], "--ability labmath: given twice"),
    (["--ability", LAB_MATH, "--include-path", "/nowhere/tasks"],
     "--include-path: '/nowhere/tasks' is not a directory"),
])
def test_eval_refuses_a_bad_ability_naming_the_option(tmp_path, args, expected):
    result = _eval(tmp_path, tmp_path / "no-model", *args)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())  # the console wraps long lines
    assert not (tmp_path / "out").exists() and not (tmp_path / "mlflow.db").exists()


def test_lm_eval_gets_the_bos_sftmix_prepends(tiny_model_dir):
    """The lab tokenizer adds no BOS on add_special_tokens=True, which is all lm-eval asks of
    it: lm-eval gets a copy that does (without it, the agreement above fails on the lab)."""
    from sftmix_ray.data.tokenizer import load_tokenizer
    from sftmix_ray.evaluate.lm_eval_run import with_bos

    tok = load_tokenizer(str(tiny_model_dir))
    plain = tok("USER: hi", add_special_tokens=True)["input_ids"]
    assert plain[0] != tok.bos_token_id
    fixed = with_bos(tok, True)
    assert fixed("USER: hi", add_special_tokens=True)["input_ids"] == [tok.bos_token_id, *plain]
    assert fixed("USER: hi", add_special_tokens=False)["input_ids"] == plain
    assert tok("USER: hi", add_special_tokens=True)["input_ids"] == plain  # a copy changed
    assert with_bos(tok, False) is tok and with_bos(fixed, True) is fixed
