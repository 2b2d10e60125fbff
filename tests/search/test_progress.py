"""The progress line of each finished trial: which point it ran, its scores or verdict, and the
count against the sweep's total (Ray's own Trial objects, a console writing to a buffer)."""

import io

from ray.tune.experiment import Trial
from rich.console import Console

from sftmix_ray.search.progress import ProgressCallback
from sftmix_ray.train.reports import EPOCH, INTERMEDIATE


def _trial(trial_id: str, point: dict, result: dict | None = None) -> Trial:
    t = Trial("fn", config={"point": point, "strategy": "ignored"}, trial_id=trial_id, stub=True)
    if result is not None:
        t.run_metadata.last_result = {**t.last_result, **result}
    return t


def _callback(total: int = 3):
    buf = io.StringIO()
    return ProgressCallback(total, ["math", "code"], Console(file=buf, width=200)), buf


def test_a_finished_trial_shows_its_point_and_scores():
    cb, buf = _callback()
    t = _trial("t1", {"strategy": "dmt", "k": 0.25, "ratio": {"math": 0.5, "code": 0.5},
                      "amount": 200, "train": {"lr": 0.001}}, {"math": 0.5, "code": 0.125})
    cb.on_trial_start(0, [], t)
    cb.on_trial_complete(0, [], t)
    started, line = buf.getvalue().splitlines()
    assert started == "… t1 dmt k=1/4 lr=0.001 50% math · 50% code, 200 samples: training"
    assert line.startswith("[1/3] t1 dmt k=1/4 lr=0.001 50% math · 50% code, 200 samples → ")
    assert "math 0.500 code 0.125" in line


def test_pruned_failed_and_seeded_trials_say_so_and_count_up():
    cb, buf = _callback(total=2)
    pruned = _trial("t2", {"strategy": "multi_task", "fractions": {"math": 0.25}},
                    {"math": 0.1, "code": 0.0, INTERMEDIATE: 1, EPOCH: 2})
    failed = _trial("t3", {"strategy": "multi_task", "counts": {"math": 10}, "seed": 4})
    cb.on_trial_complete(0, [], pruned)
    cb.on_trial_error(0, [], failed)
    first, second = buf.getvalue().splitlines()
    assert first.startswith("[1/2] t2 multi_task fractions of each domain: 1/4 math → pruned "
                            "after epoch 2 (math 0.100 code 0.000)")
    assert second.startswith("[2/2] t3 multi_task seed=4 10 math samples → FAILED")


def test_the_callback_pickles_without_its_console():
    import pickle

    cb, _ = _callback()
    again = pickle.loads(pickle.dumps(cb))
    assert again.console is None and again.total == 3
    again.on_trial_complete(0, [], _trial("t4", {"strategy": "multi_task",
                                                 "counts": {"math": 1}}, {"math": 1, "code": 1}))
    assert again.done == 1


def test_a_resumed_sweep_counts_on_from_the_trials_it_restored():
    cb, buf = _callback(total=8)
    restored = []
    for i in range(3):  # finished before the driver died; Tune restores them as finished
        t = _trial(f"r{i}", {"strategy": "multi_task", "counts": {"math": 1}})
        t.set_status(Trial.TERMINATED)
        restored.append(t)
    running = _trial("t9", {"strategy": "multi_task", "counts": {"math": 2}},
                     {"math": 0.5, "code": 0.5})
    running.set_status(Trial.TERMINATED)
    cb.on_trial_complete(0, [*restored, running], running)
    assert buf.getvalue().startswith("[4/8] t9 ")
