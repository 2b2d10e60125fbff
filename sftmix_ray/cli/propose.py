"""`sftmix propose`: mixtures a surrogate of the abilities predicts on the front."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..config import ConfigError
from .common import _refuse, console, err


def propose(sources: list[str] = typer.Option(..., "--from", help="a finished sweep's parent "
                                              "run id or an experiment (repeatable)"),
            n: int = typer.Option(4, "--n", min=1, help="mixtures to propose"),
            objectives: Optional[str] = typer.Option(None, help="metric[:max|min], comma-"
                                                     "separated; default: the sweep's"),
            constraints: Optional[str] = typer.Option(None, help="bounds, e.g. general:0.3 "
                                                      "(≥ for max, ≤ for min objectives)"),
            proxy: list[str] = typer.Option([], help="a cheaper proxy sweep, RUN_ID_OR_"
                                            "EXPERIMENT[@FIDELITY] (default fidelity 0.5)"),
            sweep_file: Optional[Path] = typer.Option(None, "--sweep", help="the target sweep "
                                                      "file; default: the one --from logged"),
            out: Path = typer.Option(Path("sweeps/proposed.yaml"), help="the sweep file to "
                                     "write"),
            seed: int = typer.Option(0),
            tracking_uri: Optional[str] = typer.Option(None, help="MLflow URI; default "
                                                                  "sqlite:///mlflow.db")):
    """Propose the mixtures a surrogate of the abilities predicts on the front, and write them
    as a ready sweep (search.warm_start)."""
    from ..analysis.front import parse_objectives
    from ..search.proposal_file import RunsError, quality_table, run_propose
    from ..search.proposals import describe
    from ..tracking.store import resolve_uri

    try:
        objs = parse_objectives(objectives) if objectives else None
        result = run_propose(resolve_uri(tracking_uri), sources, proxy, n, out, objectives=objs,
                             constraints=constraints, sweep_file=sweep_file, seed=seed)
    except ConfigError as exc:
        _refuse(exc)
    except (ValueError, RunsError) as exc:
        err.print(f"[red]cannot propose[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    names = list(result.objectives)
    header, rows = quality_table(result.quality)
    table = Table(*header, title="the surrogate per ability: cross-validated error beside the "
                                 "noise")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for i, p in enumerate(result.proposals, 1):
        console.print(f"{i}. {describe(p, names)}", highlight=False)
    console.print(f"written: {result.sweep_file} (search.warm_start holds the "
                  f"{len(result.proposals)} proposals); run it with:", highlight=False)
    console.print(f"    sftmix run {result.sweep_file}", highlight=False, soft_wrap=True)
