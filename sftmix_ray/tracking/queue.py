"""The driver's MLflow writes for the trials, in order, surviving a tracking server that is down
for a while: a write that cannot reach the server waits in a queue (kept on disk beside the
sweep's state, so a driver killed during the outage loses nothing), with a visible warning, and
the queue is replayed in order once the server answers again (at the next Tune step, at the
sweep's end, or by `sftmix resume`).

Hand-written, not a library's: MLflow's own async logging queues in memory only (a dead driver
loses it) and covers neither run creation nor artifacts; no retry library keeps an ordered,
durable log of calls whose run ids are only known once an earlier call (creating the run) has
gone through. Every write here can be replayed without harm: a trial's run is looked up by its
trial id before one is created, params and tags are set to the same values, metrics carry the
timestamp they were first logged with, artifacts overwrite themselves."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from ..atomic import write_atomic
from ..redact import redact, redact_urls
from .store import PARENT_TAG, child_runs

# MLflow's answers that a replay cannot change (a malformed or refused write); anything else
# (no connection, a timeout, a 5xx from a server whose database is down) is an outage.
PERMANENT = {"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST",
             "BAD_REQUEST", "INVALID_STATE", "PERMISSION_DENIED", "UNAUTHENTICATED",
             "CUSTOMER_UNAUTHORIZED"}
RETRY_EVERY_S = 5.0
POINT_TAG = "sftmix.point"
# While the queue tries a write, MLflow's client fails fast instead of retrying for minutes
# inside one call (its default, which would stall Tune's whole event loop during an outage).
FAST_FAIL = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


class TrackingOutage(RuntimeError):
    """The tracking server stayed down past the sweep's wait: its writes are kept for resume."""


class NoRun(LookupError):
    error_code = "RESOURCE_DOES_NOT_EXIST"  # its opening was refused: a replay cannot help


def is_permanent(err: Exception) -> bool:
    return getattr(err, "error_code", None) in PERMANENT


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class TrackingQueue:
    """Ordered, durable MLflow writes for one sweep's trials (see the module's docstring)."""

    def __init__(self, tracker, journal: Path, notify=_stderr):
        self.t, self.journal, self.notify = tracker, Path(journal), notify
        self.spool = self.journal.with_suffix(".files")
        self.runs: dict[str, str] = {}  # trial id -> run id, once its run exists
        self.pending: list[dict] = self._load()
        self.outage_since: float | None = None
        self.next_try = 0.0
        self.refused: list[str] = []

    def __getstate__(self):
        # Tune pickles its callbacks with the experiment state; the journal is the truth.
        return {"t": self.t, "journal": self.journal}

    def __setstate__(self, state):
        self.__init__(state["t"], state["journal"])

    def _load(self) -> list[dict]:
        if not self.journal.is_file():
            return []
        return [json.loads(line) for line in self.journal.read_text().splitlines() if line]

    def _save(self) -> None:
        if not self.pending:
            self.journal.unlink(missing_ok=True)
            return
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.journal, "".join(json.dumps(op) + "\n" for op in self.pending))

    def submit(self, op: str, trial: str, **args) -> None:
        """Queue one write for `trial`'s run and send what the server takes now."""
        if op == "artifact":  # a copy: the source may be a temporary file, gone by the replay
            args["path"] = self._keep(args["path"])
        # as JSON has it, so the queue in memory is the queue on disk
        self.pending.append(json.loads(json.dumps({"op": op, "trial": trial, **args})))
        self._save()
        self.flush()

    def _keep(self, path: str) -> str:
        kept = self.spool / str(time.time_ns()) / Path(path).name  # MLflow names it by its name
        kept.parent.mkdir(parents=True)
        shutil.copyfile(path, kept)
        return str(kept)

    def flush(self, force: bool = False) -> bool:
        """Send queued writes in order until one fails for an outage; True when none is left.
        During an outage the server is asked again only every RETRY_EVERY_S (or when forced)."""
        if not self.pending:
            return True
        if self.outage_since is not None and not force and time.monotonic() < self.next_try:
            return False
        while self.pending:
            op = self.pending[0]
            try:
                self._apply(op)
            except Exception as err:  # noqa: BLE001 - classified below
                if is_permanent(err):
                    self._refuse(op, err)
                else:
                    self._outage(err)
                    return False
            self.pending.pop(0)
            self._save()
        self._recovered()
        return True

    def drain(self, wait_s: float, every_s: float = RETRY_EVERY_S) -> bool:
        """Block until the queue is empty or `wait_s` has passed (the sweep's end)."""
        deadline = time.monotonic() + wait_s
        while not self.flush(force=True):
            if time.monotonic() >= deadline:
                return False
            time.sleep(every_s)
        return True

    def _outage(self, err: Exception) -> None:
        self._children = None  # a failed request may have written on the server: read again
        now = time.monotonic()
        if self.outage_since is None:
            self.outage_since = now
            where = redact_urls(redact(self.t.uri))
            self.notify(f"WARNING: the MLflow tracking server at {where} does not "
                        f"answer ({redact(str(err))[:300]}); its writes are queued in "
                        f"{self.journal} and retried every {RETRY_EVERY_S:.0f}s, nothing is "
                        f"lost")
        self.next_try = now + RETRY_EVERY_S

    def _recovered(self) -> None:
        if self.outage_since is not None:
            self.notify(f"the MLflow tracking server answers again after "
                        f"{time.monotonic() - self.outage_since:.0f}s: every queued write is "
                        f"delivered")
            self.outage_since = None
        shutil.rmtree(self.spool, ignore_errors=True)

    def _refuse(self, op: dict, err: Exception) -> None:
        what = f"{op['op']} for trial {op['trial']}: {redact(str(err))[:300]}"
        self.refused.append(what)
        self.notify(f"WARNING: the MLflow tracking server refused a write ({what})")

    def _apply(self, op: dict) -> None:
        import os

        saved = {k: os.environ.get(k) for k in FAST_FAIL}
        os.environ.update(FAST_FAIL)
        try:
            if op["op"] == "open":
                self.runs[op["trial"]] = self._open(op)
            else:
                _WRITES[op["op"]](self.t.client, self._run_of(op["trial"]), op)
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)

    def _run_of(self, trial: str) -> str:
        if trial not in self.runs:  # a run opened before the driver restarted
            for run in child_runs(self.t.client, self.t.experiment_id, self.t.parent_id):
                if run.data.tags.get("sftmix.trial_id") == trial:
                    self.runs[trial] = run.info.run_id
                    break
            else:
                raise NoRun(f"no MLflow run for trial {trial}")
        return self.runs[trial]

    def _open(self, op: dict) -> str:
        """The trial's run: its own (a replay, or a trial resumed after a restart), else a
        RUNNING run of the same point whose trial Tune had not saved before the driver died
        (the restored searcher proposes that point again under a new id), else a new run. The
        point is a tag set with the run's creation, in the same request: a driver killed
        between creating a run and logging its params leaves a run that is still found."""
        from mlflow.entities import Param

        client, trial, params = self.t.client, op["trial"], op["params"]
        point, live = point_key(params), set(op.get("live", ()))
        if getattr(self, "_children", None) is None:
            # Read once per driver, and again after any failed write (a request that failed on
            # our side may have created a run on the server's): re-reading the parent's
            # children at every trial start made each start cost O(trials so far).
            self._children = child_runs(client, self.t.experiment_id, self.t.parent_id)
        children = self._children
        if trial in self.runs:  # opened by this driver: a replay after its params failed
            run_id = self.runs[trial]
            client.update_run(run_id, status="RUNNING")
            client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
            return run_id
        run_id = next((r.info.run_id for r in children
                       if r.data.tags.get("sftmix.trial_id") == trial), None)
        if run_id is None:  # never one a trial of the driver that asked still runs
            run_id = next((r.info.run_id for r in children
                           if r.info.status == "RUNNING" and r.data.tags.get(POINT_TAG) == point
                           and r.data.tags.get("sftmix.trial_id") not in live), None)
            if run_id is not None:
                client.set_tag(run_id, "sftmix.trial_id", trial)
                client.set_tag(run_id, "mlflow.runName", f"trial-{trial}")
        if run_id is None:
            run_id = client.create_run(self.t.experiment_id, run_name=f"trial-{trial}",
                                       tags={PARENT_TAG: self.t.parent_id,
                                             "sftmix.kind": "trial", POINT_TAG: point,
                                             "sftmix.trial_id": trial}).info.run_id
            self.runs[trial] = run_id
        else:
            client.update_run(run_id, status="RUNNING")
        client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        return run_id


def point_key(params: dict[str, str]) -> str:
    """A short, stable name for a trial's settings (its params, as MLflow stores them)."""
    import hashlib

    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def _batch(client, run_id: str, op: dict) -> None:
    from mlflow.entities import Metric, Param, RunTag

    client.log_batch(run_id, metrics=[Metric(*m) for m in op.get("metrics", [])],
                     params=[Param(k, v) for k, v in op.get("params", {}).items()],
                     tags=[RunTag(k, v) for k, v in op.get("tags", {}).items()])


_WRITES = {
    "batch": _batch,  # metrics [(key, value, timestamp ms, step)], params and tags
    "artifact": lambda c, r, op: c.log_artifact(r, op["path"], op["artifact_path"]),
    "dict": lambda c, r, op: c.log_dict(r, op["data"], op["file"]),
    "text": lambda c, r, op: c.log_text(r, op["text"], op["file"]),
    "end": lambda c, r, op: c.set_terminated(r, op["status"], end_time=op.get("end_time")),
}
