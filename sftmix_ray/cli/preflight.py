"""What `sftmix validate`, `run` and `resume` check before anything is downloaded, tokenized or
launched: does a trial fit the GPU (refused with exit 2 if not), what the sweep will take in host
memory, disk and GPU-hours (printed, labelled as estimates), and can the model be reached."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from .common import err

# GiB per GPU by Ray's accelerator_type resource (ray.util.accelerators). Where one name covers
# several sizes (A100, V100) the smaller: the check then errs towards refusing.
ACCELERATOR_GIB = {"H100": 80, "H200": 141, "H20": 96, "B200": 180, "B300": 270, "GB200": 186,
                   "GB300": 279, "A100-80G": 80, "A100-40G": 40, "A100": 40, "L40S": 48,
                   "L4": 24, "A10G": 24, "V100": 16, "T4": 16, "P100": 16, "P4": 8, "K80": 12,
                   "RTX-PRO-6000": 96}


def cluster_gpu_gib(resources: dict) -> tuple[float, str] | None:
    """The smallest GPU a Ray cluster's resources name (`accelerator_type:<name>` keys), or
    None when they name no GPU Ray knows."""
    sizes = [(ACCELERATOR_GIB[k.split(":", 1)[1]], k.split(":", 1)[1]) for k in resources
             if k.startswith("accelerator_type:") and k.split(":", 1)[1] in ACCELERATOR_GIB]
    if not sizes:
        return None
    gib, name = min(sizes)
    return float(gib), f"the cluster's {name}"


def gpu_memory(sweep, given: float | None, address: str | None,
               quiet: bool = True) -> tuple[float, str]:
    """GiB per GPU and where that number comes from: `--gpu-memory`, else the Ray cluster the
    command joins (never a local Ray started for this), else this machine's GPU, else
    train.gpu_memory_gib."""
    if given is not None:
        return given, "--gpu-memory"
    if sweep.train.gpus_per_worker > 0 and (address or os.environ.get("RAY_ADDRESS")):
        import ray

        from ..search.runtime import ensure_ray

        ensure_ray(address, quiet=quiet)  # joins the cluster the sweep runs on; starts nothing
        found = cluster_gpu_gib(ray.cluster_resources())
        if found is not None:
            return found
    try:
        import torch

        if torch.cuda.is_available():
            return (torch.cuda.get_device_properties(0).total_memory / 2 ** 30,
                    "this machine's GPU")
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return sweep.train.gpu_memory_gib, "train.gpu_memory_gib"


def check_before_launch(sweep, space, *, gpu_gib: float | None = None,
                        address: str | None = None, reach_model: bool = False,
                        out=None, quiet: bool = True) -> None:
    """Print the estimates (on `out`, default stderr, where `run` reports progress); exit 2
    when a trial cannot fit its GPU or (`reach_model`) the model cannot be reached, before
    anything else happens."""
    from ..config.memory import memory_report
    from ..search.budget import sweep_budget

    gib, source = gpu_memory(sweep, gpu_gib, address, quiet)
    report = memory_report(sweep, gib, source)
    for line in report.lines + sweep_budget(sweep, space):
        (out or err).print(line, highlight=False, soft_wrap=True)
    for warning in report.warnings:
        err.print(f"[yellow]warning[/yellow] {warning}", highlight=False)
    if report.problems:
        for problem in report.problems:
            err.print(f"[red]does not fit[/red] {problem}", highlight=False)
        raise typer.Exit(2)
    if reach_model:
        problem = unreachable_model(sweep.model)
        if problem:
            err.print(f"[red]cannot reach the model[/red] {problem}", highlight=False)
            raise typer.Exit(2)


def unreachable_model(model_cfg) -> str | None:
    """Why the sweep's hub model (or tokenizer) can be neither read from the local cache nor
    downloaded, or None when it can (or is a local path, or the lab's tiny model). Asks the hub
    for the config file's metadata only: nothing is downloaded here."""
    names = [n for n in (model_cfg.name, model_cfg.tokenizer) if n]
    for field, name in zip(("model.name", "model.tokenizer"), names):
        if Path(name).exists():
            continue
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(name, "config.json"), str) or \
                isinstance(try_to_load_from_cache(name, "tokenizer_config.json"), str):
            continue
        why = _hub_problem(name)
        if why:
            return (f"{field}: {name!r} is not in the local Hugging Face cache and the hub "
                    f"cannot be reached ({why}). For offline use, download it first where "
                    f"there is a network (`huggingface-cli download {name}`, into the same "
                    f"HF_HOME) and set HF_HUB_OFFLINE=1, or set {field} to a local directory "
                    f"holding the model")
    return None


def _hub_problem(name: str) -> str | None:
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        get_hf_file_metadata(hf_hub_url(name, "config.json"), timeout=10)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the answer
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}" if str(exc) else \
            type(exc).__name__
