"""Progress for a step that takes longer than a few seconds (the lab base model's build, data
preparation): a live bar with counts, the loss where there is one, elapsed time and an ETA, on
stderr, and only when stderr is a terminal; in a log, a CI run or a Ray job it prints nothing
(the step's start and end lines say what happened). `SFTMIX_PROGRESS=0` turns it off."""

from __future__ import annotations

import os
import sys


def wanted() -> bool:
    return os.environ.get("SFTMIX_PROGRESS", "1") != "0" and sys.stderr.isatty()


class Bar:
    """`with Bar("base model", total=814, unit="steps") as bar: bar.update(1, loss=2.31)`;
    a no-op when progress is not wanted."""

    def __init__(self, what: str, total: int | None, unit: str = "", *,
                 enabled: bool | None = None):
        self.what, self.total, self.unit = what, total, unit
        self.enabled = wanted() if enabled is None else enabled
        self._progress = self._task = None

    def __enter__(self) -> Bar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn(self.unit), TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.what, total=self.total, note="")
        return self

    def set_total(self, total: int) -> None:
        """The total, once known (a training loop knows its steps only when it starts)."""
        if self._progress is not None and self.total != total:
            self.total = total
            self._progress.update(self._task, total=total)

    def update(self, advance: float = 1, **fields) -> None:
        if self._progress is not None:
            note = " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in fields.items())
            self._progress.update(self._task, advance=advance, note=note)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
