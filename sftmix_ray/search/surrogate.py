"""`search.algorithm: surrogate`: a multi-objective Bayesian loop over the surrogate, as an Optuna
sampler, so Ray Tune's OptunaSearch drives it like any other and the Optuna study stays the
single record of what was proposed and why.

Batch by batch: when its queue is empty, the sampler fits the surrogate to every finished trial
of the study plus the prior records (proxy sweeps, earlier sweeps), proposes `batch_size` points
by expected hypervolume improvement (`proposals.propose`), and hands them out one trial at a time
as the trial's parameters, each with its prediction and reason as the trial's user attributes.
Until there are enough finished trials to fit (and no prior records), it samples at random.
"""

from __future__ import annotations

import math

import numpy as np
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import TrialState

from ..analysis.records import TARGET_FIDELITY, Record, point_key
from ..analysis.surrogate import Surrogate
from ..config.point import POINT_KEY, TrialPoint
from ..config.space import SearchSpace
from ..pareto import pareto_ranks
from .proposals import propose
from .sampling import raw_params

MIN_RECORDS = 3  # fewer finished trials (and no prior records): random points
MAX_GP_RECORDS = 256  # per source (prior, this study): see SurrogateSampler._informative
# Past KEEP_FROM records, the GP's hyperparameters are optimized again only once the records
# have grown by HYPER_GROWTH since the last optimization; in between, a refit keeps them and
# only conditions on the new trials. The optimization was most of a refit (2-3 s of CPU at 100
# trials, 8 s at 1,000, against 0.2 s to condition), so past a few hundred trials the cost per
# trial stays flat. Below KEEP_FROM every refit optimizes: a few trials move the
# hyperparameters a lot (kept, and warm-started, from the first trials on, they cost the search
# benchmark's surrogate search 0.67 → 0.47 of the grid's hypervolume at 10 trials), and an
# optimization on so few trials is cheap.
KEEP_FROM = 128
HYPER_GROWTH = 1.25
PROPOSAL_ATTR = "sftmix_proposal"


class SurrogateSampler(BaseSampler):
    def __init__(self, space: SearchSpace, objectives: dict[str, str], *, batch_size: int = 4,
                 seed: int = 0, prior: list[Record] | None = None,
                 constraints: dict[str, float] | None = None, candidates: int = 1024):
        self.space, self.objectives = space, dict(objectives)
        self.batch_size, self.seed, self.candidates = batch_size, seed, candidates
        self.prior, self.constraints = list(prior or []), constraints
        self._random = RandomSampler(seed=seed)
        self._queue: list = []
        self._plans: dict[int, dict] = {}
        self._refits = 0
        self._kernels: dict | None = None  # the last refit's kernels, per objective
        self._optimized_at = 0  # records at the last hyperparameter optimization

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        plan = self._plan(study, trial)
        if param_name in plan:
            value = plan[param_name]
            if param_distribution._contains(param_distribution.to_internal_repr(value)):
                return value
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def _plan(self, study, trial) -> dict:
        """The raw parameters of this trial's proposal (empty: sample at random)."""
        if trial.number in self._plans:
            return self._plans[trial.number]
        if not self._queue:
            self._queue = self._next_batch(study)
        raw = {}
        if self._queue:
            proposal = self._queue.pop(0)
            raw = raw_params(TrialPoint.from_wire(proposal.point), self.space)
            study._storage.set_trial_user_attr(trial._trial_id, PROPOSAL_ATTR, {
                "why": proposal.why, "ehvi": proposal.ehvi, "mean": proposal.mean,
                "std": proposal.std, "feasible": proposal.feasible})
        self._plans = {trial.number: raw}  # only the trial being sampled needs its plan
        return raw

    def _next_batch(self, study) -> list:
        names = list(self.objectives)
        done, running = study_records(study, names)
        records = self.prior + done
        if len(records) < MIN_RECORDS:
            return []
        self._refits += 1
        seed = self.seed * 1000 + self._refits  # a new draw of candidates at every refit
        keep = self._kernels if KEEP_FROM <= len(records) < HYPER_GROWTH * self._optimized_at \
            else None
        surrogate = Surrogate(self.space, names, self._informative(self.prior, seed) +
                              self._informative(done, seed), seed=self.seed, keep=keep)
        self._kernels = surrogate.kernels
        if keep is None:
            self._optimized_at = len(records)
        measured = np.array([[r.values[o] for o in names] for r in done]).reshape(-1, len(names))
        exclude = {point_key(r.point) for r in done} | {point_key(p) for p in running}
        return propose(surrogate, self.space, self.objectives, self.batch_size,
                       measured=measured, constraints=self.constraints,
                       candidates=self.candidates, seed=seed, exclude=exclude,
                       tried=[r.point for r in done] + list(running))

    def _informative(self, records: list[Record], seed: int) -> list[Record]:
        """At most MAX_GP_RECORDS records for the GP: the best half by Pareto rank, the rest a
        seeded draw of the others. The GP's cost grows with the cube of its records (the
        sampler's time per trial grew from 0.01 s to over 2 s by trial 500 in
        benchmarks/scale.py); the front it must improve on is always measured in full."""
        if len(records) <= MAX_GP_RECORDS:
            return records
        names = list(self.objectives)
        values = np.array([[r.values[o] for o in names] for r in records])
        ranks = pareto_ranks(values, [self.objectives[o] == "max" for o in names])
        order = np.argsort(ranks, kind="stable")
        best = list(order[:MAX_GP_RECORDS // 2])
        rest = np.random.default_rng(seed).permutation(order[MAX_GP_RECORDS // 2:])
        return [records[i] for i in best + list(rest[:MAX_GP_RECORDS - len(best)])]

    def reseed_rng(self) -> None:
        self._random.reseed_rng()


def study_records(study, objectives: list[str]) -> tuple[list[Record], list[dict]]:
    """The study's finished trials as target-fidelity records (their point is the user attribute
    `DefineByRun` sets), and the points of trials still running."""
    done, running = [], []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        point = t.user_attrs.get(POINT_KEY)
        if point is None:
            continue
        if t.state == TrialState.RUNNING:
            running.append(point)
        elif t.values is not None and all(math.isfinite(v) for v in t.values):
            done.append(Record(point, dict(zip(objectives, t.values)), TARGET_FIDELITY,
                               run_id=f"optuna-{t.number}"))
    return done, running
