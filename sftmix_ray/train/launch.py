"""The TorchTrainer a trial fits, without two default callbacks a sweep trial has no use for.

Measured (benchmarks/trial_overhead.py; probes in the walking-skeleton note): Ray Train starts a
DatasetManager actor even with no datasets, and a detached PlacementGroupCleaner actor that imports
ray.train and polls the state API every second, ~3.5 s of a 2-core machine per trial together.
The cleaner only matters when a controller dies abruptly mid-fit; a trial here reports only after
fit() returns, and a failing fit removes its own placement group. `_create_default_callbacks` is
private Ray API (pinned ray 2.60.x): if it changes, this falls back to Ray's defaults.
"""

from __future__ import annotations

SKIPPED_CALLBACKS = ("DatasetsCallback", "PlacementGroupCleanerCallback")


def lean_torch_trainer_cls():
    from ray.train.torch import TorchTrainer

    if not hasattr(TorchTrainer, "_create_default_callbacks"):
        return TorchTrainer

    class LeanTorchTrainer(TorchTrainer):
        def _create_default_callbacks(self):
            return [c for c in super()._create_default_callbacks()
                    if type(c).__name__ not in SKIPPED_CALLBACKS]

    return LeanTorchTrainer
