"""The Optuna study's durable home, and its cleanup after a sweep."""

from __future__ import annotations

from pathlib import Path


def study_storage(search, exp_dir: Path):
    """An RDB URL from `search.study_storage`, or a journal file beside the Tune experiment (it
    survives the driver; JournalFileBackend locks for writers)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if search.study_storage:
        return optuna.storages.RDBStorage(search.study_storage)
    exp_dir.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(exp_dir / "optuna.journal")))


def close_orphans(name: str, storage) -> None:
    """Optuna trials still RUNNING after fit() belong to a driver that died before Tune saved
    them; nothing runs them now, so they are told FAILED and the study agrees with MLflow."""
    import optuna

    study = optuna.load_study(study_name=name, storage=storage)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
