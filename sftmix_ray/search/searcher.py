"""The searcher a sweep's `search:` names: a seeded Optuna sampler behind Ray Tune's OptunaSearch,
over the space's define-by-run function, warm-started from enqueued points."""

from __future__ import annotations

import math

from ray.tune.search.optuna import OptunaSearch

from ..config.point import TrialPoint
from ..config.schema import SweepConfig
from ..config.space import SearchSpace
from ..train.reports import is_intermediate
from .sampling import DefineByRun, raw_params


def make_sampler(search, space: SearchSpace | None = None, prior: list | None = None):
    """The seeded Optuna sampler for `search.algorithm` (the search benchmark uses it too, so it
    measures exactly the samplers a sweep runs). Constraints reach the samplers through each
    trial's own constraint values (`SweepOptunaSearch`), Optuna 5's replacement for the
    samplers' deprecated constraints_func; the surrogate sampler weighs its proposals by the
    probability that they hold. `prior`: records of proxy or earlier sweeps (surrogate only)."""
    import optuna

    seed = search.seed
    if search.algorithm == "surrogate":
        from .surrogate import SurrogateSampler

        if space is None:
            raise ValueError("the surrogate sampler needs the search space")
        return SurrogateSampler(space, dict(search.objectives),
                                batch_size=search.batch_size or search.max_concurrent,
                                seed=seed, prior=prior, constraints=search.constraints)
    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
                "nsga2": lambda: optuna.samplers.NSGAIISampler(
                    seed=seed, **({"population_size": search.population_size}
                                  if search.population_size else {})),
                "gp": lambda: optuna.samplers.GPSampler(seed=seed),
                "random": lambda: optuna.samplers.RandomSampler(seed=seed)}
    if search.algorithm not in samplers:
        raise ValueError(f"search.algorithm {search.algorithm!r} has no Optuna sampler")
    return samplers[search.algorithm]()


class Constraints:
    """Bounds on objectives as Optuna constraint values: ≤ 0 means satisfied (≥ bound for a
    maximized objective, ≤ bound for a minimized one)."""

    def __init__(self, bounds: dict[str, float], objectives: dict[str, str]):
        self.bounds, self.modes = dict(bounds), dict(objectives)

    def values(self, result: dict) -> dict[str, float] | None:
        """Constraint values from a trial's reported objectives; None when one is missing or
        not finite (the trial then counts as failed, and has no constraint values)."""
        out = {}
        for name, bound in self.bounds.items():
            value = result.get(name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                return None
            out[name] = bound - value if self.modes[name] == "max" else value - bound
        return out


class SweepOptunaSearch(OptunaSearch):
    """Ray's OptunaSearch, telling Optuna what it would not: a trial the pruner stopped is PRUNED
    (Ray would tell COMPLETE with the partial value); a trial with a NaN or infinite objective
    FAILED (Ray would leave it RUNNING); and a finished trial's constraint values."""

    def __init__(self, *args, constraints: Constraints | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._sftmix_constraints = constraints

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if is_intermediate(result):
            result = None
        elif result and not all(_finite(result.get(m)) for m in self._metric_list()):
            # Optuna refuses a NaN or inf value; Ray's OptunaSearch logs that and leaves the
            # trial RUNNING forever, which the samplers then treat as pending. It failed.
            result, error = None, True
        if result and self._sftmix_constraints is not None and trial_id in self._ot_trials \
                and trial_id not in self._completed_trials:
            for name, value in (self._sftmix_constraints.values(result) or {}).items():
                self._ot_trials[trial_id].set_constraint(name, value)
        super().on_trial_complete(trial_id, result, error)

    def _metric_list(self) -> list[str]:
        return self.metric if isinstance(self.metric, list) else [self.metric]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def build_searcher(sweep: SweepConfig, space: SearchSpace, study_storage=None,
                   prior: list | None = None):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = sweep.search
    warm = [raw_params(TrialPoint.from_wire(p), space) for p in search.warm_start or []]
    constraints = Constraints(search.constraints, search.objectives) if search.constraints \
        else None
    return SweepOptunaSearch(DefineByRun(space), metric=list(search.objectives),
                             mode=list(search.objectives.values()),
                             sampler=make_sampler(search, space, prior),
                             storage=study_storage, study_name=sweep.name,
                             points_to_evaluate=warm or None, constraints=constraints)
