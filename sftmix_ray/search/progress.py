"""A progress display that shows each trial as it finishes, with its ability scores."""

from __future__ import annotations

import time

from ray.tune import Callback

from ..config.point import TrialPoint
from ..train.reports import EPOCH, is_intermediate


class ProgressCallback(Callback):
    def __init__(self, total: int, objectives: list[str], console=None):
        from rich.console import Console

        self.total, self.objectives = total, objectives
        self.console = console or Console(stderr=True)
        self.done = 0
        self.started: dict[str, float] = {}
        self.t0 = time.time()

    def __getstate__(self):
        return {**self.__dict__, "console": None}

    def _line(self, trial, trials, verdict: str) -> None:
        if self.console is None:
            from rich.console import Console
            self.console = Console(stderr=True)
        # Counted from Tune's own list, so a resumed sweep goes on from the trials it restored.
        self.done = max(self.done + 1, sum(t.is_finished() for t in trials))
        point = TrialPoint.of_trial(trial.config)
        took = time.time() - self.started.get(trial.trial_id, self.t0)
        self.console.print(f"[{self.done}/{self.total}] {trial.trial_id} {point.strategy}"
                           f"{point.settings()} {point.describe()} → {verdict}  ({took:.0f}s, "
                           f"{time.time() - self.t0:.0f}s total)", highlight=False)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.time()
        if self.console is not None:
            point = TrialPoint.of_trial(trial.config)
            self.console.print(f"[dim]… {trial.trial_id} {point.strategy}{point.settings()} "
                               f"{point.describe()}: training[/dim]", highlight=False)

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        # "math 0.234": a score, never spelled like a share of the mixture ("33% math")
        scores = " ".join(f"{o} {r.get(o, float('nan')):.3f}" for o in self.objectives)
        self._line(trial, trials, f"pruned after epoch {r.get(EPOCH)} ({scores})"
                   if is_intermediate(r) else scores)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._line(trial, trials, "[red]FAILED[/red]")
