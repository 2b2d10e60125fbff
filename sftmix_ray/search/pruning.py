"""Pruning weak trials in single-objective sweeps: Ray Tune's ASHA over the objective evaluated
after each epoch of a trial's final stage.

The pieces: the Train worker reports the objective after each epoch, marked `INTERMEDIATE`
(`train.reports`);
`IntermediateReports` forwards only those reports from Ray Train to the Tune trial (the stage
checkpoints and the final report stay with the trial function, which reports the final result
itself); ASHA stops trials behind their peers at the same epoch; and the searcher
(`searcher.SweepOptunaSearch`) tells Optuna a stopped trial was PRUNED, never COMPLETE with a
partial value.
"""

from __future__ import annotations

from ray.tune.integration.ray_train import TuneReportCallback

from ..train.reports import INTERMEDIATE


def asha(prune, objectives: dict[str, str]):
    from ray.tune.schedulers import ASHAScheduler

    (metric, mode), = objectives.items()
    # max_t only caps the rungs: trials end on their own when their epochs are done.
    return ASHAScheduler(metric=metric, mode=mode, time_attr="training_iteration",
                         grace_period=prune.grace_period,
                         reduction_factor=prune.reduction_factor, max_t=10_000)


class IntermediateReports(TuneReportCallback):
    """Forward a Train run's intermediate reports (rank 0's) to the Tune trial, and nothing else:
    the trial reports its final result once, after fit() returns."""

    def after_report(self, run_context, metrics, checkpoint):
        if metrics and metrics[0].get(INTERMEDIATE):
            super().after_report(run_context, metrics, None)
