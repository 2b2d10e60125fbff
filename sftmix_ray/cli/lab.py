"""`sftmix lab …`: the embedded default's own commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import _load, console, err

lab_app = typer.Typer(no_args_is_help=True, help="The lab: the embedded default domains and model.")


@lab_app.command("pretrain")
def lab_pretrain(sweep_file: Path = typer.Argument(Path("sweeps/quickstart.yaml"),
                                                   help="a lab sweep (its tiny model and cache)"),
                 storage: Optional[str] = typer.Option(None, help="override storage")):
    """Build the lab base model a lab sweep fine-tunes (once; later sweeps take it from the
    cache). A lab sweep builds it itself if missing; this does it ahead, and says where."""
    from ..data.prepare import prepare
    from ..storage import cache_root
    from ..train.lab_base import ensure_lab_base

    sweep, _ = _load(sweep_file, {"storage": storage})
    if sweep.model.lab_base is None:
        err.print(f"[red]no lab base model to build[/red]: {sweep_file} sets model.name or "
                  "model.tiny.pretrain: null", highlight=False)
        raise typer.Exit(2)
    cache = cache_root(sweep.storage, sweep.cache_dir)
    prepared = prepare(sweep, cache)
    base = ensure_lab_base(sweep.model, prepared.tokenizer_dir, cache,
                           say=lambda m: err.print(m, highlight=False))
    info = base.info
    console.print(f"[green]{'built' if base.built else 'cached'}[/green] lab base model {base.key} "
                  f"at {base.path}: {info['docs']:,} documents, {info['tokens']:,} tokens, "
                  f"{info['steps']} steps, final loss {info['loss']:.3f}, {info['seconds']:.0f}s",
                  highlight=False)
