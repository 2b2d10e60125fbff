"""Run a sweep: prepare data once, start (or join) Ray, search with Optuna through Ray Tune, track
in MLflow, and compute the Pareto front of the trials that finished. Orchestration only: each
step is another room's."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..config.checks import scored_names, size_problems
from ..config.load import ConfigError
from ..config.point import POINT_KEY
from ..config.schema import SweepConfig
from ..config.space import SearchSpace
from ..data.prepare import prepare
from ..data.sizes import sizes_after_preparing
from ..evaluate.sets import prepare_eval_sets
from ..storage import cache_root, experiment_location, is_uri, state_dir, storage_root, uri_exists
from ..tracking.queue import TrackingOutage, TrackingQueue
from ..tracking.store import experiment_name, resolve_uri
from ..tracking.sweep import SweepTracker
from ..tracking.trials import MLflowTrialCallback
from ..train.lab_base import ensure_lab_base, lab_base_at_hand
from .answer import QUEUE_FILE, SweepOutcome, answer_when_reachable, answered, finished_answer
from .prior import load_prior
from .runtime import capacity_problem, ensure_ray, trial_capacity
from .sampling import grid_points
from .searcher import build_searcher
from .study import study_storage
from .trial import run_trial

TRIAL_DRIVER_CPU = 0.01  # the trial function only waits on its TorchTrainer
STATE_FILE = "sftmix_sweep.json"


class ResumeError(ValueError):
    pass


def planned_trials(sweep: SweepConfig, space: SearchSpace) -> int:
    if sweep.search.algorithm != "grid":
        return sweep.search.num_samples
    return len(grid_points(space, sweep.search.seeds)) * sweep.search.num_samples


def run_sweep(sweep: SweepConfig, space: SearchSpace, *, address: str | None = None,
              console=None, quiet_ray: bool = True, resume: bool = False,
              trial_fn=None) -> SweepOutcome:
    """Run a sweep, or (resume=True) complete one whose driver died: the Tune experiment, the
    Optuna study and the MLflow parent run go on (a finished sweep: its answer, nothing run).
    `trial_fn` replaces the trainable (`run_trial`): the scale benchmark's landscape trial."""
    t0 = time.time()
    experiment = experiment_location(sweep.storage, sweep.name)  # a path or a URI
    exp_dir = state_dir(sweep.storage, sweep.cache_dir, sweep.name)  # the driver's own files
    state = _resume_state(experiment, exp_dir, sweep) if resume else None
    if state is not None and answered(state, exp_dir):
        return finished_answer(sweep, state, t0, _announcer(console))
    # Proxy sweeps are read first: one that cannot be read stops the sweep before anything
    # is prepared or launched. A resumed searcher has its own.
    prior = load_prior(sweep) if not resume else []
    if not resume:
        _keep_earlier_run_aside(sweep, experiment, exp_dir, console)
    cache = cache_root(sweep.storage, sweep.cache_dir)
    say = _announcer(console)
    prepared, eval_sets = _prepare(sweep, space, cache, say)
    base = _lab_base(sweep, prepared, cache, say, address, quiet_ray) if trial_fn is None \
        else None  # a stand-in trainable (the scale benchmark's) fine-tunes nothing
    tracker = SweepTracker(resolve_uri(sweep.tracking.uri), experiment_name(sweep), sweep.name,
                           tags={"sftmix.data_key": prepared.key,
                                 "sftmix.base_model": base.key if base else "none",
                                 "sftmix.search": sweep.search.algorithm},
                           parent_id=state["parent_run_id"] if state else None)
    sweep_params = {"model": sweep.model.name or "tiny-llama", "seed": sweep.train.seed,
                    "epochs": sweep.train.epochs, "lr": sweep.train.lr}
    if not resume:
        tracker.log_sweep(sweep, space, prepared.domains, sweep_params)
        _write_state(exp_dir, tracker)
    status = "FAILED"
    # Tune saves its state at most every 10 s by default; a driver killed in that window runs
    # the trials that had just finished again on resume. Trials take far longer than a save.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    try:
        say(f"joining Ray at {address}" if address else "starting Ray on this machine")
        ensure_ray(address, quiet=quiet_ray)
        say("Ray is up; the first trial trains now")
        trainable = _trainable(sweep, space, prepared, eval_sets, experiment,
                               trial_fn or run_trial, base)
        tuner = _restored_tuner(experiment, trainable) if resume else \
            _new_tuner(sweep, space, trainable, tracker, sweep_params, exp_dir, console, prior)
        tuner.fit()
        _deliver(sweep, tracker, exp_dir, say)
        outcome = answer_when_reachable(sweep, tracker, sweep_params, exp_dir, t0, say)
        status = None  # finished inside the answer
        return outcome
    except TrackingOutage:
        status = None  # the parent run stays RUNNING: `sftmix resume` finishes it
        raise
    finally:
        if status is not None:
            tracker.finish(status)


def _prepare(sweep, space, cache, say):
    """The tokenized domains and the evaluation sets (each built once, then cached), checked
    against the mixtures before any record or Ray: hub domains are sized only now."""
    say(f"preparing data: {len(sweep.domains)} domains and the evaluation sets "
        f"(tokenized once, then cached under {cache})")
    prepared, eval_sets = prepare(sweep, cache), prepare_eval_sets(sweep.evaluate, cache)
    say(f"data ready: {', '.join(prepared.built) or 'nothing'} tokenized, "
        f"{len(prepared.domains) - len(prepared.built)} from the cache")
    too_large = size_problems(space, sweep, sizes_after_preparing(prepared))
    if too_large:
        raise ConfigError(sweep.name, too_large)
    return prepared, eval_sets


def _deliver(sweep, tracker, exp_dir: Path, say) -> None:
    """Every queued MLflow write delivered before the answer is read back, waiting for a tracking
    server that is down (up to `tracking.outage_wait_s`); past that the writes stay queued on
    disk for `sftmix resume`, which delivers them first."""
    queue = TrackingQueue(tracker, exp_dir / QUEUE_FILE)
    if queue.flush(force=True):
        return
    wait = sweep.tracking.outage_wait_s
    say(f"waiting up to {wait:.0f}s for the MLflow tracking server to take "
        f"{len(queue.pending)} queued writes")
    if not queue.drain(wait):
        raise TrackingOutage(f"the MLflow tracking server did not answer for {wait:.0f}s; "
                             f"{len(queue.pending)} writes are kept in {queue.journal}: "
                             f"run `sftmix resume` with this sweep file once it is back")


def _lab_base(sweep, prepared, cache, say, address=None, quiet_ray=True):
    """The lab base model the trials start from, or None. One that must be built first is
    built while Ray starts (the build runs in a thread; Ray's processes start beside it), so a
    fresh clone's first sweep waits for the longer of the two, not for both."""
    from concurrent.futures import ThreadPoolExecutor

    if sweep.model.lab_base is None:
        return None
    if lab_base_at_hand(sweep.model, prepared.tokenizer_dir, cache):
        base = ensure_lab_base(sweep.model, prepared.tokenizer_dir, cache, say=say)
    else:
        say(f"joining Ray at {address}" if address else "starting Ray on this machine "
            "while the base model builds")
        with ThreadPoolExecutor(1, thread_name_prefix="lab-base") as pool:
            building = pool.submit(ensure_lab_base, sweep.model, prepared.tokenizer_dir, cache,
                                   say=say)
            ensure_ray(address, quiet=quiet_ray)
            base = building.result()
    how = "built" if base.built else "ready (from the cache or shipped), built"
    say(f"lab base model {base.key}: {how} in {base.info['seconds']:.0f}s on "
        f"{base.info['tokens']:,} tokens of lab web text")
    return base


def _announcer(console):
    """Progress before the first trial ends: each step as it starts, with the time so far."""
    t0 = time.time()

    def say(message: str) -> None:
        if console is not None:
            console.print(f"[dim]{time.time() - t0:5.1f}s[/dim] {message}", highlight=False)

    return say


def _resume_state(experiment: str, exp_dir: Path, sweep: SweepConfig) -> dict:
    from ray import tune

    state_path = exp_dir / STATE_FILE
    if not state_path.is_file() or not tune.Tuner.can_restore(experiment):
        raise ResumeError(f"nothing to resume: no sweep {sweep.name!r} at {experiment}")
    return json.loads(state_path.read_text())


def _write_state(exp_dir: Path, tracker: SweepTracker) -> None:
    exp_dir.mkdir(parents=True, exist_ok=True)
    (exp_dir / STATE_FILE).write_text(json.dumps({"parent_run_id": tracker.parent_id,
                                                  "experiment_id": tracker.experiment_id,
                                                  "tracking_uri": tracker.uri}))


def _trainable(sweep, space, prepared, eval_sets, experiment: str, trial_fn, base=None):
    """The trial function with the sweep's typed objects bound to it (Ray puts them in its
    object store once), asking only a sliver of a CPU for itself."""
    from ray import tune

    return tune.with_resources(
        tune.with_parameters(trial_fn, sweep=sweep, space=space, prepared=prepared,
                             eval_sets=eval_sets, storage=experiment,
                             **({"base_model": base.path} if base else {})),
        {"cpu": TRIAL_DRIVER_CPU})


def _restored_tuner(experiment: str, trainable):
    """Callbacks and the searcher come back from the experiment state; the trainable is given
    again. Finished trials stay finished; unfinished ones run again."""
    from ray import tune

    return tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True,
                              resume_errored=False, restart_errored=False)


def _new_tuner(sweep, space, trainable, tracker, sweep_params, exp_dir: Path, console,
               prior=None):
    from ray import tune

    from .progress import ProgressCallback

    per_trial = {"CPU": sweep.train.workers * sweep.train.cpus_per_worker,
                 "GPU": sweep.train.workers * sweep.train.gpus_per_worker}
    capacity = trial_capacity(per_trial, TRIAL_DRIVER_CPU)
    if capacity == 0:  # Ray Train would wait for its workers forever, retrying every minute
        raise ConfigError(sweep.name, [capacity_problem(per_trial, sweep.train.workers,
                                                        TRIAL_DRIVER_CPU)])
    concurrency = max(1, min(sweep.search.max_concurrent, capacity))
    if sweep.search.algorithm == "grid":
        points = [p.to_wire() for p in grid_points(space, sweep.search.seeds)]
        param_space, search_alg = {POINT_KEY: tune.grid_search(points)}, None
    else:
        param_space = {}
        search_alg = build_searcher(sweep, space, study_storage(sweep.search, exp_dir), prior)
    callbacks = [MLflowTrialCallback(tracker, sweep_params,
                                     TrackingQueue(tracker, exp_dir / QUEUE_FILE),
                                     tuple(scored_names(sweep))),
                 ProgressCallback(planned_trials(sweep, space), list(sweep.search.objectives),
                                  console)]
    scheduler = None
    if sweep.search.prune is not None:
        from .pruning import asha

        scheduler = asha(sweep.search.prune, sweep.search.objectives)
    return tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler,
                                    num_samples=sweep.search.num_samples,
                                    max_concurrent_trials=concurrency,
                                    # The trial driver process (and its imports) is reused, except
                                    # when trials can be stopped mid-fit: only ending the stopped
                                    # trial's process takes its TorchTrainer (an actor it owns) and
                                    # that trainer's workers down with it.
                                    reuse_actors=scheduler is None),
        run_config=tune.RunConfig(name=sweep.name, storage_path=storage_root(sweep.storage),
                                  verbose=0, callbacks=callbacks,
                                  failure_config=tune.FailureConfig(max_failures=0)))


def _keep_earlier_run_aside(sweep, experiment: str, exp_dir: Path, console) -> None:
    """A fresh run never mixes with an old one's trials or study: on a filesystem the old one is
    moved aside; an object store cannot rename a directory, so there the run is refused."""
    if is_uri(sweep.storage):
        if uri_exists(experiment) or exp_dir.exists():
            raise ResumeError(f"storage already holds a sweep {sweep.name!r} ({experiment}): "
                              f"complete it with `sftmix resume`, or give this sweep another "
                              f"name")
        return
    if not exp_dir.exists():
        return
    aside = exp_dir.with_name(f"{sweep.name}.{time.strftime('%Y%m%d-%H%M%S')}")
    exp_dir.rename(aside)
    if console is not None:
        console.print(f"an earlier run of {sweep.name!r} was moved to {aside}", highlight=False)
