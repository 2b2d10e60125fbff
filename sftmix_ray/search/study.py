"""The Optuna study's durable home, and its cleanup after a sweep."""

from __future__ import annotations

import abc
import sys
from pathlib import Path

import optuna

# How long a database outage (a restart, a failover) may last before the sweep gives up on it.
STORAGE_OUTAGE_S = 600.0
# Storage calls Ray's OptunaSearch and this module make; all read or write one row set, so a
# call that failed because the server was unreachable changed nothing and is safe to repeat.
STORAGE_CALLS = ("create_new_study", "delete_study", "set_study_user_attr",
                 "set_study_system_attr", "get_study_id_from_name", "get_study_name_from_id",
                 "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
                 "get_all_studies", "create_new_trial", "set_trial_param",
                 "get_trial_id_from_study_id_trial_number", "get_trial_number_from_id",
                 "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
                 "set_trial_user_attr", "set_trial_system_attr", "get_trial",
                 "get_all_trials", "get_n_trials", "get_best_trial", "get_trial_params",
                 "get_trial_user_attrs", "get_trial_system_attrs", "check_trial_is_updatable",
                 "remove_session")


def _unreachable(err: BaseException) -> bool:
    """A database that is down or restarting (the connection refused or dropped), not a bad
    call: Optuna wraps SQLAlchemy's errors in StorageInternalError."""
    import sqlalchemy.exc as sa

    cause = err.__cause__ if err.__cause__ is not None else err
    return isinstance(cause, (sa.OperationalError, sa.InterfaceError)) or \
        (isinstance(cause, sa.DBAPIError) and cause.connection_invalidated)


def _warn(state) -> None:
    err = state.outcome.exception()
    print(f"WARNING: the Optuna study's database does not answer ({type(err).__name__}: "
          f"{str(err.__cause__ or err).splitlines()[0][:200]}); retrying "
          f"{state.fn.__name__} in {state.next_action.sleep:.0f}s", file=sys.stderr, flush=True)


def _retrying(name: str):
    import tenacity

    policy = tenacity.retry(retry=tenacity.retry_if_exception(_unreachable),
                            wait=tenacity.wait_exponential(multiplier=0.5, max=10),
                            stop=tenacity.stop_after_delay(STORAGE_OUTAGE_S),
                            before_sleep=_warn, reraise=True)

    def call(self, *args, **kwargs):
        return getattr(self._inner, name)(*args, **kwargs)

    call.__name__ = name
    return policy(call)


class DurableStorage(optuna.storages.BaseStorage):
    """An RDB storage whose calls wait out a database outage (retried with backoff and a
    warning) instead of failing the sweep; Tune pickles it with the searcher's state."""

    def __init__(self, inner):
        self._inner = inner


for _name in STORAGE_CALLS:
    setattr(DurableStorage, _name, _retrying(_name))
abc.update_abstractmethods(DurableStorage)


def study_storage(search, exp_dir: Path):
    """An RDB URL from `search.study_storage`, or a journal file beside the Tune experiment (it
    survives the driver; JournalFileBackend locks for writers)."""
    from optuna.storages.journal import JournalFileBackend

    if search.study_storage:
        return DurableStorage(optuna.storages.RDBStorage(search.study_storage))
    exp_dir.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(exp_dir / "optuna.journal")))


def close_orphans(name: str, storage) -> None:
    """Optuna trials still RUNNING after fit() belong to a driver that died before Tune saved
    them; nothing runs them now, so they are told FAILED and the study agrees with MLflow."""
    study = optuna.load_study(study_name=name, storage=storage)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
