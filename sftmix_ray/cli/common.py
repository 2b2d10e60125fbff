"""What every `sftmix` command shares: the consoles, loading a sweep (exit 2 naming every
problem), and quieting libraries."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from ..config import ConfigError, load_sweep

console = Console(width=None if Console().is_terminal else 140)
err = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 140)


def _load(path: Path, overrides: dict | None = None):
    """The sweep with command-line overrides merged in before validation (held to the file's
    rules), and its mixtures checked against the local files' sizes (lab pools are checked at
    load); exit 2 naming every problem."""
    from ..config.checks import size_problems
    from ..data.sizes import local_file_sizes
    from ..evaluate.lm_eval_run import lm_eval_problems

    try:
        sweep, space = load_sweep(path, overrides)
        problems = size_problems(space, sweep, local_file_sizes(sweep)) + \
            lm_eval_problems(sweep.evaluate.abilities)
        if problems:
            raise ConfigError(str(path), problems)
        return sweep, space
    except ConfigError as exc:
        _refuse(exc)


def _quiet_libraries(quiet: bool) -> None:
    """MLflow announces creating its SQLite tables at INFO: noise to a user watching a sweep.
    MLflow sets its loggers' level from MLFLOW_LOGGING_LEVEL when it is imported (later, in the
    sweep), so the variable is what holds; a logger level set now would be reset then."""
    if quiet:
        import logging
        import os

        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _refuse(exc: ConfigError):
    # escaped: a problem may quote brackets ('sftmix-ray[lmeval]') that rich reads as markup
    err.print(f"[red]invalid sweep[/red] {escape(str(exc))}", highlight=False)
    raise typer.Exit(2) from None
