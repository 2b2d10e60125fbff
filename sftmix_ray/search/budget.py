"""What a whole sweep will take, estimated before launch from the sweep file alone: training
tokens and compute (6 × parameters × tokens, GPU-hours at a stated MFU), and disk (kept models,
stage checkpoints a later trial reuses, the tokenized cache). Every number is an estimate and
says what it assumes: sample lengths are not known until the data is tokenized."""

from __future__ import annotations

from collections import Counter

from ..config.memory import GIB, _lora_params, model_shape
from ..config.point import TrialPoint
from ..config.presets import APPROX_ROWS, LAB_DEFAULT_POOL
from ..data.mixture import resolve_counts
from ..data.sizes import local_file_sizes
from ..plan.strategies import plan_stages
from .sampling import grid_points, strategy_points

# Tokens per sample when a domain does not say (domains.<d>.mean_tokens): the study's data
# through the Vicuna template is ~200; the lab's samples are ~50 with the lab's own BPE
# (tests/train/test_packing.py tokenizes them).
MEAN_TOKENS, LAB_MEAN_TOKENS = 200, 60
MFU = 0.40  # model FLOPs utilisation the GPU-hours assume
PEAK_FLOPS = 989e12  # dense bf16 FLOP/s of an H100 SXM, the GPU the study's sweeps name
TOKEN_BYTES = 8  # the tokenized cache: int32 ids and int32 labels per token


def domain_sizes(sweep) -> dict[str, int]:
    """Samples per domain as far as the sweep file tells: lab pools, local files' rows, the
    presets' published sizes. Hub datasets without a preset are left out (unknown)."""
    sizes = {d: n for d, (n, _) in local_file_sizes(sweep).items()}
    for name, dom in sweep.domains.items():
        if dom.is_lab:
            sizes[name] = dom.pool or LAB_DEFAULT_POOL
        elif name not in sizes and dom.preset in APPROX_ROWS:
            sizes[name] = APPROX_ROWS[dom.preset]
    return sizes


def trial_points(sweep, space) -> tuple[list[TrialPoint], float]:
    """The points the sweep trains (a grid's exactly) and how many trials each stands for: a
    searched space's candidates stand, on average, for num_samples / len(candidates) trials."""
    if sweep.search.algorithm == "grid":
        return grid_points(space, sweep.search.seeds), float(sweep.search.num_samples)
    if space.mixture == "ratio":
        amount = space.amount
        amounts = amount.choices or [(amount.low * amount.high) ** 0.5 if amount.log
                                     else (amount.low + amount.high) / 2]
        mixtures = [{"ratio": {d: 1.0 for d in space.domains}, "amount": int(a)}
                    for a in amounts]
    else:
        mixtures = [{space.mixture: m} for m in (space.fractions or space.counts).mixtures()]
    points = [TrialPoint(**m, **s) for m in mixtures
              for s in strategy_points(space, grid=False)]
    return points, sweep.search.num_samples / len(points)


def _stages(point: TrialPoint, sweep, space, sizes: dict[str, int]):
    counts = resolve_counts(point.mixture(), space.domains, sizes,
                            {d: True for d in space.domains})
    order = point.order or space.options("sequential").order \
        if point.strategy == "sequential" else None
    return plan_stages(point.strategy, counts, space.specialized, point.k, order,
                       space.options(point.strategy).stages, point.online)


def sweep_budget(sweep, space) -> list[str]:
    """Lines describing the sweep's compute and disk, each labelled as an estimate."""
    shape = model_shape(sweep.model)
    if shape is None:
        return ["compute and disk: not estimated (the model's shape is not known locally)"]
    tr = sweep.train
    sizes = domain_sizes(sweep)
    per_sample = {d: min(dom.mean_tokens or (LAB_MEAN_TOKENS if dom.is_lab else MEAN_TOKENS),
                         tr.max_length) for d, dom in sweep.domains.items()}
    points, weight = trial_points(sweep, space)
    tokens, plans = 0.0, []
    try:
        for point in points:
            plan = []
            for st in _stages(point, sweep, space, sizes):
                epochs = st.epochs or tr.epochs
                tokens += weight * epochs * sum(n * per_sample[d] for d, n in st.counts.items())
                plan.append((tuple(sorted(st.counts.items())), epochs))
            plans.append(tuple(plan))
    except (KeyError, ValueError):  # MixtureError is a ValueError
        return [f"compute and disk: not estimated (domain sizes known only after preparing: "
                f"{', '.join(sorted(set(sweep.domains) - set(sizes)))})"]
    trials = round(weight * len(points))
    assumed = ", ".join(f"{d} {per_sample[d]:g}" for d in sweep.domains)
    return [_compute_line(shape, tr, sweep, tokens, trials, assumed),
            _disk_line(shape, tr, sizes, per_sample, trials,
                       reused_prefixes(plans) if sweep.search.algorithm == "grid" else 0)]


def reused_prefixes(plans: list[tuple]) -> int:
    """Stage prefixes (a plan's first stages, not all of them) that another trial's plan also
    starts with: the prefix cache keeps a checkpoint of each (e.g. DMT's stage 1 across k)."""
    having, proper = Counter(), Counter()
    for plan in set(plans):
        for i in range(1, len(plan) + 1):
            having[plan[:i]] += 1
            proper[plan[:i]] += i < len(plan)
    return sum(1 for p, n in proper.items() if n and having[p] >= 2)


def _compute_line(shape, tr, sweep, tokens: float, trials: int, assumed: str) -> str:
    flops = 6 * shape.params * tokens
    line = (f"compute (estimate): {trials} trials, {_count(tokens)} training tokens "
            f"(mean tokens per sample assumed: {assumed}; domains.<d>.mean_tokens to change), "
            f"6 × {_count(shape.params)} parameters × tokens = {flops:.2e} FLOPs, "
            f"evaluation not counted")
    if tr.gpus_per_worker <= 0:
        return line
    gpu_hours = flops / (PEAK_FLOPS * MFU) / 3600
    gpus = tr.workers * tr.gpus_per_worker * min(sweep.search.max_concurrent, max(trials, 1))
    return (line + f"; ~{gpu_hours:,.3g} GPU-hours at {MFU:.0%} MFU of an H100 "
            f"({PEAK_FLOPS / 1e12:.0f} TFLOP/s bf16): ~{gpu_hours / gpus:,.3g} h on the {gpus:g} "
            f"GPU(s) it uses at once, ~{gpu_hours / 8:,.3g} h on one 8-GPU node")


def _count(n: float) -> str:
    return f"{n / 1e9:.3g} B" if n >= 1e9 else f"{n / 1e6:.3g} M"


def _gib(n: float) -> str:
    return f"{n:,.1f} GiB" if n >= 1 else f"{n * 1024:.0f} MiB"


def _disk_line(shape, tr, sizes, per_sample, trials: int, reused: int) -> str:
    kept = trials * 2 * shape.params / GIB if tr.save_model else 0.0
    shared = reused if tr.prefix_cache else 0
    stage_bytes = 4 * (_lora_params(shape, tr.lora) if tr.lora else shape.params)
    stages = shared * stage_bytes / GIB
    tokenized = sum(n * per_sample[d] for d, n in sizes.items()) * TOKEN_BYTES / GIB
    return (f"disk (estimate): ~{_gib(kept + stages + tokenized)} in the sweep's storage: "
            f"kept models {_gib(kept)} ({trials if tr.save_model else 0} × bf16), stage "
            f"checkpoints {_gib(stages)} ({shared} prefix(es) a later trial reuses, float32), "
            f"tokenized data {_gib(tokenized)}")
