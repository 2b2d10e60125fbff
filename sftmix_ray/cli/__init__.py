"""The `sftmix` command line: validate a sweep, run it, and read the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..config import ConfigError
from .common import _load, _quiet_libraries, _refuse, console, err
from .lab import lab_app
from .preflight import check_before_launch
from .propose import propose

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Sweeps over SFT data composition on Ray.")


@app.command()
def validate(sweep_file: Path = typer.Argument(..., help="a sweeps/*.yaml file"),
             gpu_memory: Optional[float] = typer.Option(
                 None, help="GiB per GPU the sweep will run on (default: this machine's GPU, "
                 "else train.gpu_memory_gib)")):
    """Check a sweep and its search space without running anything, and estimate whether a
    trial fits the GPUs it asks for (exit 2 if not), and the sweep's memory, disk and compute."""
    sweep, space = _load(sweep_file, {})
    console.print(f"[green]ok[/green] {sweep_file}: sweep {sweep.name!r}, "
                  f"{len(space.domains)} domains, strategies {', '.join(space.strategies)}, "
                  f"{sweep.search.algorithm} × {sweep.search.num_samples}")
    check_before_launch(sweep, space, gpu_gib=gpu_memory, out=console)


@app.command()
def run(sweep_file: Path = typer.Argument(..., help="a sweeps/*.yaml file"),
        address: Optional[str] = typer.Option(None, help="join a Ray cluster ('auto', ray://…)"),
        num_samples: Optional[int] = typer.Option(None, help="override search.num_samples"),
        max_concurrent: Optional[int] = typer.Option(None, help="override search.max_concurrent"),
        storage: Optional[str] = typer.Option(None, help="override storage"),
        tracking_uri: Optional[str] = typer.Option(None, help="override the MLflow tracking URI"),
        study_storage: Optional[str] = typer.Option(None, help="override search.study_storage"),
        cache_dir: Optional[str] = typer.Option(None, help="override cache_dir"),
        verbose: bool = typer.Option(False, help="show Ray's own logs")):
    """Run a sweep: trials on Ray Tune + Ray Train, tracked in MLflow, answered by a Pareto
    front."""
    from ..data.prepare import DataError
    from ..data.template import TemplateError
    from ..evaluate.benchmarks import BenchmarkError
    from ..redact import redact_urls
    from ..search.tuner import ResumeError, planned_trials, run_sweep
    from ..tracking.queue import TrackingOutage
    from ..tracking.store import resolve_uri

    sweep, space = _load(sweep_file, {"search.num_samples": num_samples,
                                      "search.max_concurrent": max_concurrent,
                                      "storage": storage, "tracking.uri": tracking_uri,
                                      "search.study_storage": study_storage,
                                      "cache_dir": cache_dir})
    check_before_launch(sweep, space, address=address, reach_model=True,
                        quiet=not verbose)
    tracking = redact_urls(resolve_uri(sweep.tracking.uri))  # a URL may carry a password
    err.print(f"sweep {sweep.name!r}: {planned_trials(sweep, space)} trials "
              f"({sweep.search.algorithm}), MLflow at {tracking}",
              highlight=False)
    try:
        _quiet_libraries(not verbose)
        outcome = run_sweep(sweep, space, address=address, console=err, quiet_ray=not verbose)
    except ConfigError as exc:  # mixtures larger than the prepared domains
        _refuse(exc)
    except (DataError, TemplateError, BenchmarkError) as exc:
        err.print(f"[red]cannot prepare the data[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    except ResumeError as exc:
        err.print(f"[red]cannot start[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    except TrackingOutage as exc:
        _outage(exc)
    print_answer(outcome, dict(sweep.search.objectives))
    failed = sum(r["status"] not in ("ok", "pruned") for r in outcome.rows)
    if failed == len(outcome.rows):
        raise typer.Exit(1)


def _outage(exc):
    """Trials done, records waiting for the tracking server: not a user error (exit 1)."""
    err.print(f"[red]records not yet delivered[/red]: {exc}", highlight=False)
    raise typer.Exit(1) from None


@app.command()
def resume(sweep_file: Path = typer.Argument(..., help="the sweep file the run was started with"),
           address: Optional[str] = typer.Option(None, help="join a Ray cluster ('auto', "
                                                            "ray://…)"),
           storage: Optional[str] = typer.Option(None, help="override storage"),
           tracking_uri: Optional[str] = typer.Option(None, help="override the MLflow URI"),
           study_storage: Optional[str] = typer.Option(None, help="override "
                                                                  "search.study_storage"),
           cache_dir: Optional[str] = typer.Option(None, help="override cache_dir"),
           verbose: bool = typer.Option(False, help="show Ray's own logs")):
    """Complete a sweep whose driver died (even kill -9): no trial lost, none run twice."""
    from ..data.prepare import DataError
    from ..search.tuner import ResumeError, run_sweep
    from ..tracking.queue import TrackingOutage

    sweep, space = _load(sweep_file, {"storage": storage, "tracking.uri": tracking_uri,
                                      "search.study_storage": study_storage,
                                      "cache_dir": cache_dir})
    from ..storage import experiment_location

    check_before_launch(sweep, space, address=address, reach_model=True,
                        quiet=not verbose)
    err.print(f"resuming sweep {sweep.name!r} from "
              f"{experiment_location(sweep.storage, sweep.name)}", highlight=False)
    try:
        _quiet_libraries(not verbose)
        outcome = run_sweep(sweep, space, address=address, console=err, quiet_ray=not verbose,
                            resume=True)
    except (ResumeError, DataError) as exc:
        err.print(f"[red]cannot resume[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    except TrackingOutage as exc:
        _outage(exc)
    print_answer(outcome, dict(sweep.search.objectives))


@app.command("eval")
def eval_(model: str = typer.Option(..., help="hub id or local path of a causal LM"),
          benchmarks: Optional[str] = typer.Option(
              None, help="comma-separated: gsm8k, humaneval, mt_bench, lab_math, lab_code, "
              "lab_general (default: the first three, or none when --ability is given)"),
          n: Optional[int] = typer.Option(None, help="first N problems of each (default: all)"),
          gsm8k: str = typer.Option("openai/gsm8k", help="GSM8K test: local JSONL or hub id"),
          template: str = typer.Option("auto", help="auto, vicuna, model, or a .jinja file"),
          judge_url: Optional[str] = typer.Option(None, help="OpenAI-compatible base URL for "
                                                             "the MT-Bench judge"),
          judge_model: Optional[str] = typer.Option(None, help="the judge's model name"),
          batch_size: int = typer.Option(16),
          max_new_tokens: Optional[int] = typer.Option(None, help="default: per benchmark"),
          ability: list[str] = typer.Option([], help="NAME=lm_eval:TASK[@METRIC,FILTER], "
                                            "repeatable: an lm-eval task as an ability (--n "
                                            "is its limit); METRIC,FILTER default acc,none"),
          include_path: Optional[str] = typer.Option(None, help="a directory of lm-eval task "
                                                     "YAMLs for --ability"),
          samples: int = typer.Option(1, help="completions per prompt (pass@k)"),
          temperature: float = typer.Option(0.0, help="0 = greedy"),
          out: Path = typer.Option(Path("eval_results"), help="where scores and records go"),
          cache_dir: Path = typer.Option(Path("runs/cache/eval"), help="evaluation cache"),
          no_cache: bool = typer.Option(False, help="score again even if cached"),
          tracking_uri: Optional[str] = typer.Option(None, help="MLflow URI; default "
                                                                "sqlite:///mlflow.db"),
          experiment: str = typer.Option("sftmix-eval", help="MLflow experiment")):
    """Score any model on the ability benchmarks, outside a sweep."""
    from pydantic import ValidationError

    from ..evaluate import standalone as sa
    from ..evaluate.benchmarks import BenchmarkError
    from ..evaluate.judge import JudgeError
    from ..evaluate.lm_eval_run import LmEvalError
    from ..tracking.evals import log_to_mlflow
    from ..tracking.store import resolve_uri

    try:
        names, cfg = sa.eval_options(benchmarks, ability, include_path, n=n, gsm8k=gsm8k,
                                     batch_size=batch_size, max_new_tokens=max_new_tokens,
                                     judge_url=judge_url, judge_model=judge_model,
                                     samples=samples, temperature=temperature)
    except (ValueError, ValidationError) as exc:
        err.print(f"[red]invalid options[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    if not (Path(model).exists() or "/" in model):
        err.print(f"[red]--model[/red]: {model!r} is neither a local path nor a hub id")
        raise typer.Exit(2)
    try:
        result = sa.evaluate_model(model, names, cfg, template=template,
                                   cache_dir=None if no_cache else cache_dir, out_dir=out)
    except (BenchmarkError, JudgeError, LmEvalError, OSError) as exc:
        err.print(f"[red]cannot evaluate[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    uri = resolve_uri(tracking_uri)
    run_id = log_to_mlflow(result, model_id=model, benchmarks=names, cfg=cfg, tracking_uri=uri,
                           experiment=experiment, out_dir=out)
    _print_scores(model, result)
    console.print(f"records: {out / 'eval_records.json'}; MLflow run {run_id} at {uri}",
                  highlight=False)


def _print_scores(model: str, result: dict) -> None:
    table = Table(title=f"{model} ({result['seconds']:.0f}s)")
    table.add_column("metric")
    table.add_column("value")
    for k, v in sorted(result["scores"].items()):
        table.add_row(k, f"{v:.4f}")
    console.print(table)
    if result["cache_hit"]:
        console.print("scores from the evaluation cache (same weights and settings)")
    if result["general_scorer"]:
        console.print(f"general scorer: {result['general_scorer']}", highlight=False)


@app.command()
def pareto(sweep: Optional[str] = typer.Option(None, help="the sweep's parent run id"),
           experiment: Optional[str] = typer.Option(None, help="or every run of an experiment"),
           objectives: str = typer.Option("math,code,general",
                                          help="comma-separated metric[:max|min]"),
           reference: Optional[str] = typer.Option(None, help="hypervolume reference point, "
                                                   "comma-separated; default: 0 for scores, "
                                                   "the worst value for min objectives"),
           tracking_uri: Optional[str] = typer.Option(None, help="MLflow URI; default "
                                                                 "sqlite:///mlflow.db"),
           by: str = typer.Option("mean", help="rank by the scores (mean) or by their "
                                                "pessimistic 95% bounds (lower)"),
           tag: bool = typer.Option(True, help="tag runs pareto_front / pareto_rank")):
    """The Pareto front of a sweep (or an experiment): table, ranks, hypervolume, MLflow tags."""
    from ..analysis.front import analyze, parse_objectives
    from ..tracking.front import record_front
    from ..tracking.runs import RunsError, load_runs
    from ..tracking.store import resolve_uri

    uri = resolve_uri(tracking_uri)
    try:
        objs = parse_objectives(objectives)
        ref = [float(x) for x in reference.split(",")] if reference else None
        parent, runs = load_runs(uri, sweep=sweep, experiment=experiment)
        result = analyze(runs, objs, ref, by=by)
    except (ValueError, RunsError) as exc:
        err.print(f"[red]cannot analyze[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    names = {r.run_id: r.name for r in runs}
    table = Table(title=f"{len(result.run_ids)} runs by {result.by}; ★ = Pareto front (rank 1), "
                        f"≈ = off the front but within noise of it")
    for col in ["", "run", "rank", *objs]:
        table.add_column(col)
    order = sorted(range(len(result.run_ids)), key=lambda i: (result.ranks[i], result.run_ids[i]))
    noise = set(result.within_noise)
    for i in order:
        mark = "★" if result.on_front[i] else "≈" if result.run_ids[i] in noise else ""
        table.add_row(mark, names[result.run_ids[i]],
                      str(result.ranks[i]), *[f"{v:.4f}" for v in result.values[i]])
    console.print(table)
    ref_text = ", ".join(f"{n}={v:g}" for n, v in zip(objs, result.reference))
    console.print(f"front: {int(result.on_front.sum())} of {len(result.run_ids)}; hypervolume "
                  f"{result.hypervolume:.6g} against ({ref_text})", highlight=False)
    if result.missing:
        console.print(f"left out (failed or missing an objective): {len(result.missing)} runs",
                      highlight=False)
    if tag:
        record_front(uri, result, runs, parent.run_id if parent else None)
        console.print('tagged: filter the front in the MLflow UI with tags.pareto_front = "true"')


@app.command()
def report(sweep: Optional[str] = typer.Option(None, help="the sweep's parent run id"),
           experiment: Optional[str] = typer.Option(None, help="or every run of an experiment"),
           objectives: str = typer.Option("math,code,general",
                                          help="comma-separated metric[:max|min]"),
           out: Path = typer.Option(Path("report"), help="directory for report.html, report.md "
                                                         "and the figures"),
           tracking_uri: Optional[str] = typer.Option(None, help="MLflow URI; default "
                                                                 "sqlite:///mlflow.db")):
    """Write an HTML + Markdown report of a sweep: front, figures, best mixtures, findings."""
    from ..analysis.front import parse_objectives
    from ..report.build import build_report
    from ..tracking.runs import RunsError
    from ..tracking.store import resolve_uri

    try:
        result = build_report(resolve_uri(tracking_uri), out, sweep=sweep,
                              experiment=experiment, objectives=parse_objectives(objectives))
    except (ValueError, RunsError) as exc:
        err.print(f"[red]cannot report[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"report: {result['html']} and {result['markdown']} ({result['rows']} points, "
                  f"{result['failed']} failed runs; figures: {', '.join(result['figures'])})",
                  highlight=False)


app.add_typer(lab_app, name="lab")
app.command()(propose)


def print_answer(outcome, objectives: dict[str, str]) -> None:
    table = Table(title=f"trials ({outcome.seconds:.0f}s); ★ = Pareto front")
    for col in ["", "trial", "strategy", "k", "mixture", *objectives, "status"]:
        table.add_column(col)
    for r in sorted(outcome.rows, key=lambda r: r["trial_id"]):
        table.add_row("★" if r.get("pareto_front") else "", r["trial_id"], str(r["strategy"]),
                      "" if r["k"] is None else f"{r['k']:g}", r["mixture"],
                      *["" if r[o] is None else f"{r[o]:.3f}" for o in objectives],
                      r["status"] if not r["error"] else f"failed: {r['error'][:60]}")
    console.print(table)
    console.print(f"Pareto front: {len(outcome.front)} of {len(outcome.rows)} trials. "
                  f"MLflow: parent run {outcome.parent_run_id} in experiment "
                  f"{outcome.experiment_id} at {outcome.tracking_uri}", highlight=False)
    print_next_steps(outcome.parent_run_id, outcome.experiment_name, outcome.tracking_uri,
                     objectives)


def print_next_steps(run_id: str, experiment: str, uri: str,
                     objectives: dict[str, str] | None = None) -> None:
    """The commands to run next, each whole on its own line (never wrapped, so a pasted line
    is the command): the follow-the-user test runs every `sftmix` line printed here. A sweep
    whose objectives are not report's and pareto's default (the three, maximized) names them,
    so the printed commands judge the sweep by what it searched for."""
    objs = ""
    if objectives and objectives != {a: "max" for a in ("math", "code", "general")}:
        objs = " --objectives " + ",".join(f"{k}:{v}" for k, v in objectives.items())
    steps = [("Report", f"sftmix report --sweep {run_id}{objs} --tracking-uri {uri}"),
             ("Front by the 95% lower bounds",
              f"sftmix pareto --sweep {run_id}{objs} --by lower --tracking-uri {uri}"),
             ("Propose the next mixtures", f"sftmix propose --from {run_id} --tracking-uri {uri}"),
             ("Browse", f"mlflow ui --backend-store-uri {uri}")]
    console.print("Next:", highlight=False)
    for what, command in steps:
        console.print(f"  {what}:", highlight=False)
        console.print(f"    {command}", highlight=False, soft_wrap=True)
    console.print(f"  In the UI: experiment {experiment!r}, view 'Model training'",
                  highlight=False, soft_wrap=True)
    console.print('    the front: filter tags.pareto_front = "true"; the parent run holds '
                  "front.png", highlight=False, soft_wrap=True)


def main() -> None:
    app()
