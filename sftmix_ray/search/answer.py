"""A sweep's answer: every trial read back from MLflow, the front recorded (tags, `pareto.json`,
the front as a picture on the parent run), retried while the tracking server blips; and the
answer of a sweep that already finished, for a `resume` with nothing left to do."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis.front import analyze
from ..tracking.front import record_front
from ..tracking.queue import TrackingOutage
from ..tracking.runs import load_runs
from ..tracking.store import experiment_name
from ..tracking.sweep import answer_rows
from ..tracking.trials import MLflowTrialCallback
from .study import close_orphans, study_storage

QUEUE_FILE = "mlflow_queue.jsonl"  # MLflow writes waiting for the tracking server


@dataclass
class SweepOutcome:
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    rows: list[dict] = field(default_factory=list)  # one per trial
    front: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    experiment_name: str = ""


def answered(state: dict, exp_dir: Path) -> bool:
    """The sweep ended with its answer (the parent run FINISHED, set last) and no MLflow write
    waits in the queue: a resume has nothing to run or deliver."""
    from mlflow.exceptions import MlflowException

    from ..tracking.store import client_for

    journal = exp_dir / QUEUE_FILE  # deleted once every write is delivered
    if journal.is_file() and journal.read_text().strip():
        return False
    try:
        run = client_for(state["tracking_uri"]).get_run(state["parent_run_id"])
    except MlflowException:
        return False
    return run.info.status == "FINISHED"


def finished_answer(sweep, state: dict, t0: float, say) -> SweepOutcome:
    """The finished sweep's answer read back from MLflow (nothing written, nothing run)."""
    objectives = dict(sweep.search.objectives)
    _, runs = load_runs(state["tracking_uri"], sweep=state["parent_run_id"])
    say(f"sweep {sweep.name!r} already finished ({len(runs)} trials in parent run "
        f"{state['parent_run_id']}): nothing to resume, nothing run")
    rows = answer_rows(runs, analyze(runs, objectives), list(objectives))
    return SweepOutcome(state["parent_run_id"], state["experiment_id"], state["tracking_uri"],
                        rows, [r for r in rows if r["pareto_front"]], time.time() - t0,
                        experiment_name(sweep))


def answer_when_reachable(sweep, tracker, sweep_params, exp_dir, t0, say) -> SweepOutcome:
    """The answer, read and written while the tracking server may still blip (its database
    restarting answers 503): every step of it can be repeated, so it is, for up to
    `tracking.outage_wait_s`; past that the sweep's records are whole and `sftmix resume`
    answers it."""
    import tenacity
    from mlflow.exceptions import MlflowException

    from ..tracking.queue import is_permanent

    def answer():
        outcome = _answer(sweep, tracker, sweep_params, exp_dir, t0)
        tracker.finish("FINISHED")
        return outcome

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda e: isinstance(e, MlflowException) and not is_permanent(e)),
        wait=tenacity.wait_fixed(5), stop=tenacity.stop_after_delay(sweep.tracking.outage_wait_s),
        before_sleep=lambda state: say("WARNING: the MLflow tracking server does not answer "
                                       "the sweep's answer yet; retrying in 5s"), reraise=True)
    try:
        return retrying(answer)
    except MlflowException as err:
        if is_permanent(err):
            raise
        raise TrackingOutage(f"the MLflow tracking server did not answer for "
                             f"{sweep.tracking.outage_wait_s:.0f}s; every trial's records are "
                             f"kept: run `sftmix resume` with this sweep file once it is back") \
            from None


def _answer(sweep, tracker, sweep_params, exp_dir: Path, t0: float) -> SweepOutcome:
    """Close what a dead driver left open, then read every trial back from MLflow (a resumed
    sweep's answer covers the trials before the restart) and record the front."""
    MLflowTrialCallback(tracker, sweep_params, None).close_orphans()
    if sweep.search.algorithm != "grid":
        close_orphans(sweep.name, study_storage(sweep.search, exp_dir))
    objectives = dict(sweep.search.objectives)
    _, runs = load_runs(tracker.uri, sweep=tracker.parent_id)
    analysis = analyze(runs, objectives)
    record_front(tracker.uri, analysis, runs, tracker.parent_id)
    rows = answer_rows(runs, analysis, list(objectives))
    front = [r for r in rows if r["pareto_front"]]
    _log_front_picture(tracker, runs, objectives, f"{len(front)} of {len(rows)} trials on the "
                       f"Pareto front")
    return SweepOutcome(tracker.parent_id, tracker.experiment_id, tracker.uri, rows, front,
                        time.time() - t0, experiment_name(sweep))


FRONT_PICTURE = "front.png"


def _log_front_picture(tracker, runs, objectives: dict[str, str], summary: str) -> None:
    """The front as a picture on the parent run (the report's pairwise figure), and the
    parent's description saying where it is: the MLflow UI shows the answer without
    `sftmix report`."""
    import tempfile

    from ..report import plots
    from ..report.table import build_rows

    figure = plots.pairwise(build_rows(runs, objectives), list(objectives))
    if figure is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / FRONT_PICTURE
            figure.savefig(path, format="png", dpi=110)
            plots.plt.close(figure)
            tracker.client.log_artifact(tracker.parent_id, str(path))
        summary += f"; the front drawn in artifact {FRONT_PICTURE}"
    tracker.client.set_tag(tracker.parent_id, "mlflow.note.content", summary)


