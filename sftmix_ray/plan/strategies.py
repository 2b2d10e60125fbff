"""SFT strategies as declarative stage lists (the study's RQ4).

A plan is a list of stages; each stage is per-domain sample counts. Counts for the same domain in
different stages select prefixes of the same nested order, so DMT's stage-2 fraction k of the
specialized data is a subset of what stage 1 saw, as in the study.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.space import BUILT_IN_STRATEGIES as STRATEGIES

# How an online stage draws its samples (train.online_loop._Draws), named in its manifest: the
# hash keys the evaluation cache, so a change to the drawing must change this name. v1 walked
# each domain's order without wrapping (three times a static trial's distinct samples at three
# epochs); its cached scores were served to v2's retrained weights until this was in the hash.
ONLINE_DRAWS = "v2: amount x epochs visits, at most amount distinct samples, nested prefixes"


@dataclass(frozen=True)
class Stage:
    name: str
    counts: dict[str, int]
    epochs: int | None = None  # None: the sweep's train.epochs
    steps: int | None = None  # a cap on optimizer steps, for stages measured in steps
    # strategy online: the method and knobs; `counts` are then the prior (the searched ratio ×
    # amount), the stage draws amount × epochs samples by weights that move (train.online_loop)
    online: dict | None = None

    @property
    def size(self) -> int:
        return sum(self.counts.values())


def custom_stages(stage_specs: list, counts: dict[str, int]) -> list[Stage]:
    """A user's stage list: each stage takes the whole mixture count of its `domains` plus a
    fraction `replay` of others (a prefix of the same nested order, as DMT's k is)."""
    stages = []
    for i, spec in enumerate(stage_specs):
        stage_counts = {d: counts[d] for d in spec.domains}
        stage_counts.update({d: round(f * counts[d]) for d, f in (spec.replay or {}).items()})
        stages.append(Stage(spec.name or f"stage{i}", stage_counts, spec.epochs, spec.steps))
    return [s for s in stages if s.size > 0]


def plan_stages(strategy: str, counts: dict[str, int], specialized: list[str],
                k: float | None = None, order: list[str] | None = None,
                custom: list | None = None, online: dict | None = None) -> list[Stage]:
    if custom is not None:
        return custom_stages(custom, counts)
    general = [d for d in counts if d not in specialized]
    spec = {d: counts[d] for d in specialized if d in counts}
    gen = {d: counts[d] for d in general}
    if strategy == "multi_task":
        stages = [Stage("multi_task", dict(counts))]
    elif strategy == "sequential":
        stages = [Stage(f"seq_{d}", {d: counts[d]}) for d in (order or list(counts))]
    elif strategy == "mixed_sequential":
        stages = [Stage("specialized", spec), Stage("general", gen)]
    elif strategy == "dmt":
        if k is None or not 0 < k <= 1:
            raise ValueError(f"DMT needs k in (0, 1], got {k!r}")
        replay = {d: round(k * n) for d, n in spec.items()}
        stages = [Stage("specialized", spec), Stage(f"general+{k:g}specialized", {**gen, **replay})]
    elif strategy == "online":
        if not online or online.get("method") not in ("exp3", "doremi"):
            raise ValueError(f"online needs a method (exp3 or doremi), got {online!r}")
        stages = [Stage(f"online_{online['method']}", dict(counts), online=dict(online))]
    else:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    return [s for s in stages if s.size > 0]
