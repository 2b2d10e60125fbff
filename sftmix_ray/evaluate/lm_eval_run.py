"""Abilities scored by lm-evaluation-harness (`lm_eval[hf]`, an optional extra): the trained
model is handed to lm-eval in memory (`HFLM(pretrained=model, tokenizer=tokenizer)`), one task
per ability; the score is lm-eval's aggregate for the chosen '<metric>,<filter>', and the
per-document values are kept as records, from which the 95% interval is computed the same way
as for the study's abilities (evaluate/intervals.py)."""

from __future__ import annotations

import difflib
import importlib.util
import os
from pathlib import Path

LAB_TASKS = Path(__file__).resolve().parent / "lm_eval_tasks"
INSTALL_HINT = "pip install 'sftmix-ray[lmeval]'"


def _offline() -> None:
    """lm-eval reaches datasets through `datasets`, which may ask the hub even for local data."""
    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        os.environ.setdefault(var, "1")


def task_manager(abilities: dict, defaults: bool | None = None):
    """A TaskManager over the lab's tasks and every include_path, and lm-eval's built-in tasks
    (indexing those takes lm-eval tens of seconds) only when some task is not found locally."""
    from lm_eval.tasks import TaskManager

    paths = [str(LAB_TASKS)] + sorted({a.include_path for a in abilities.values()
                                       if a.include_path})
    if defaults is None:
        local = TaskManager(include_path=paths, include_defaults=False)
        if all(a.task in local.all_tasks for a in abilities.values()):
            return local
    return TaskManager(include_path=paths, include_defaults=defaults is not False)


class LmEvalError(ValueError):
    """An lm-eval ability that ran but cannot be read (its task reports no such metric)."""


TASK_FILES = (".yaml", ".yml", ".py", ".jinja", ".txt", ".json")


def tasks_digest(abilities: dict) -> str:
    """The lm-eval version and the task files the abilities read (the lab's and each
    include_path's): in the evaluation cache's key, so an edited task YAML is scored again
    instead of answered from the cache."""
    from importlib.metadata import version

    from ..digests import digest, file_digest

    roots = [str(LAB_TASKS)] + sorted({a.include_path for a in abilities.values()
                                       if a.include_path})
    return digest({"lm_eval": version("lm_eval"),
                   "files": {f"{i}/{f.relative_to(root)}": file_digest(f)
                             for i, root in enumerate(map(Path, roots))
                             for f in sorted(root.rglob("*"))
                             if f.is_file() and f.suffix in TASK_FILES}})


def lm_eval_problems(abilities: dict) -> list[str]:
    """Why the sweep's lm-eval abilities cannot run: the package missing, an include_path that
    is not a directory, or a task lm-eval does not know ('field: problem' lines)."""
    if not abilities:
        return []
    if importlib.util.find_spec("lm_eval") is None:
        return [f"evaluate.abilities.{name}: source lm_eval needs the lm-eval package, which is "
                f"not installed ({INSTALL_HINT})" for name in abilities]
    problems = [f"evaluate.abilities.{name}.include_path: {a.include_path!r} is not a directory"
                for name, a in abilities.items()
                if a.include_path and not Path(a.include_path).is_dir()]
    if problems:
        return problems
    known = set(task_manager(abilities).all_tasks)
    for name, a in abilities.items():
        if a.task not in known:
            close = difflib.get_close_matches(a.task, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"evaluate.abilities.{name}.task: lm-eval has no task {a.task!r} "
                            f"(built-in, the lab's, or in include_path){hint}")
    return problems


def with_bos(tokenizer, prepend_bos: bool):
    """The tokenizer lm-eval gets. lm-eval leaves BOS to the tokenizer (it encodes with
    add_special_tokens=True), while sftmix prepends BOS itself in training and generation
    (data/tokenize.py, evaluate/generate.py): a tokenizer whose post-processor adds none, as the
    lab's, would show lm-eval prompts without the BOS every trained sequence starts with, and
    its greedy answers would differ from sftmix's own. Such a tokenizer is copied, the copy
    adding BOS."""
    import copy

    bos = tokenizer.bos_token_id
    if not prepend_bos or bos is None or not hasattr(tokenizer, "backend_tokenizer") or \
            tokenizer("x", add_special_tokens=True)["input_ids"][:1] == [bos]:
        return tokenizer
    from tokenizers.processors import TemplateProcessing

    out = copy.deepcopy(tokenizer)
    out.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{tokenizer.bos_token} $A", pair=f"{tokenizer.bos_token} $A $B:1",
        special_tokens=[(tokenizer.bos_token, bos)])
    return out


def score_lm_eval(model, tokenizer, abilities: dict, *, prepend_bos: bool = True
                  ) -> tuple[dict, dict]:
    """({name: score, name_stderr: lm-eval's stderr}, {name: per-document records}). lm-eval
    calls `model.eval()`; the model's training mode is restored afterwards."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    _offline()
    was_training = model.training
    manager = task_manager(abilities)
    scores, records = {}, {}
    tokenizer = with_bos(tokenizer, prepend_bos)
    try:
        for name, a in abilities.items():
            lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=a.batch_size,
                      add_bos_token=prepend_bos)
            out = simple_evaluate(model=lm, tasks=[a.task], task_manager=manager,
                                  limit=a.limit, num_fewshot=a.num_fewshot,
                                  apply_chat_template=a.apply_chat_template, log_samples=True,
                                  bootstrap_iters=1000, random_seed=0, numpy_random_seed=0,
                                  torch_random_seed=0, fewshot_random_seed=0)
            scores[name], scores[f"{name}_stderr"], records[name] = _read(out, a)
    finally:
        model.train(was_training)
    return scores, records


def _read(out: dict, a) -> tuple[float, float, list[dict]]:
    metric, filt = a.metric.split(",")
    result = out["results"][a.task]
    if a.metric not in result:
        raise LmEvalError(f"lm-eval task {a.task!r} reports no {a.metric!r} (it reports "
                         f"{', '.join(k for k in result if ',' in k)})")
    stderr = result.get(f"{metric}_stderr,{filt}")
    rows = [s for s in out["samples"][a.task] if s.get("filter") == filt]
    records = [{"doc_id": int(s["doc_id"]), "value": float(s[metric]),
                "target": str(s.get("target")), "response": _first(s.get("filtered_resps")),
                "output": _first(s.get("resps"))}
               for s in rows]
    records.sort(key=lambda r: r["doc_id"])
    return float(result[a.metric]), float(stderr) if _is_number(stderr) else float("nan"), \
        records


def _first(value):
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return str(value) if value is not None else None


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False
