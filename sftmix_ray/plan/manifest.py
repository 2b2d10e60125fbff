"""A trial's plan: its point and the sweep's space become stages with exact per-domain counts,
and a manifest naming the data they see, hashed (the hash keys caches and MLflow tags)."""

from __future__ import annotations

from pathlib import Path

from ..config.point import TrialPoint
from ..config.space import SearchSpace
from ..data.mixture import resolve_counts, select_indices, selection_digest
from ..data.prepare import PreparedData
from ..data.tokenize import load_index
from ..digests import digest
from .strategies import ONLINE_DRAWS, Stage, plan_stages


def build_plan(point: TrialPoint, space: SearchSpace, prepared: PreparedData, seed: int,
               max_length: int | None = None) -> tuple[list[Stage], dict]:
    """Stages with exact per-domain counts, and the manifest that names the data they see: per
    stage and domain the sample, token and label-token counts, truncations and a digest of the
    exact indices; per domain the source fingerprint and the rows skipped as malformed."""
    doms = prepared.domains
    counts = resolve_counts(point.mixture(), list(space.domains),
                            {d: doms[d]["size"] for d in space.domains},
                            {d: doms[d].get("upsample", False) for d in space.domains})
    order = (point.order or space.options("sequential").order
             if point.strategy == "sequential" else None)
    stages = plan_stages(point.strategy, counts, space.specialized, point.k, order,
                         space.options(point.strategy).stages, point.online)
    manifest = _manifest_head(point, prepared, counts, stages, seed, max_length)
    used = sorted({d for st in stages for d in st.counts})
    index = {d: load_index(doms[d]["path"]) for d in used}
    for st in stages:
        entry = {"name": st.name, "epochs": st.epochs, "steps": st.steps, "domains": {}}
        if st.online is not None:
            # Which samples an online stage draws is decided during training; what fixes them
            # is here (knobs, prior counts, seed, each domain's nested order): the hash keys
            # the evaluation cache and resume on these.
            entry["online"], entry["draws"] = dict(st.online), ONLINE_DRAWS
            entry["domains"] = {d: {"prior_samples": n, "pool": doms[d]["size"]}
                                for d, n in st.counts.items()}
            manifest["stages"].append(entry)
            continue
        for d, n in st.counts.items():
            idx = select_indices(d, doms[d]["size"], n, seed)
            ix = index[d]
            entry["domains"][d] = {"samples": n, "tokens": int(ix["lengths"][idx].sum()),
                                   "trainable_tokens": int(ix["trainable"][idx].sum()),
                                   "truncated": int(ix["truncated"][idx].sum()),
                                   "repeats": -(-n // doms[d]["size"]) if n else 0,
                                   "selection": selection_digest(idx)}
        manifest["stages"].append(entry)
    manifest["hash"] = digest(manifest)
    return stages, manifest


def _manifest_head(point: TrialPoint, prepared: PreparedData, counts: dict, stages: list[Stage],
                   seed: int, max_length: int | None) -> dict:
    doms = prepared.domains
    used = sorted({d for st in stages for d in st.counts})
    manifest = {"seed": seed, "strategy": point.strategy, "k": point.k,
                "mixture": point.mixture(), "counts": counts,
                "tokenizer": Path(prepared.tokenizer_dir).name,
                "template": prepared.template, "max_length": max_length,
                "domains": {d: {k: doms[d][k] for k in ("source", "format", "fingerprint", "rows",
                                                        "size", "skipped", "key")}
                            for d in used},
                "stages": []}
    # Only when searched, so manifests (and their hashes) of sweeps without them stay as before.
    if point.order:
        manifest["order"] = list(point.order)
    if point.train:
        manifest["train"] = dict(point.train)
    if point.online:
        manifest["online"] = dict(point.online)
    return manifest
