"""Checks across fields that a schema alone cannot make, run before anything starts: addresses
of a supported scheme, objectives that a trial really reports, storage that can hold a sweep, and
mixtures no larger than the domains they draw from. Each returns 'field: problem' lines."""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import urlparse

# MLflow tracking stores (its own URI schemes; a SQLAlchemy driver may follow a '+').
TRACKING_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "file",
                    "databricks")
JUDGE_SCHEMES = ("http", "https")
# Optuna's RDB storages (SQLAlchemy URLs; a driver may follow a '+', e.g. postgresql+psycopg).
STUDY_SCHEMES = ("postgresql", "mysql", "sqlite", "oracle", "mssql")
# Per-stage metrics: one set per stage of the trial's plan.
STAGE_METRIC = re.compile(r"^stage\d+_(loss|steps|tokens|positions|samples|seconds|cached)$")


def uri_problem(field: str, value: str | None, schemes: tuple[str, ...]) -> list[str]:
    if value is None:
        return []
    parsed = urlparse(value)
    scheme = parsed.scheme.split("+", 1)[0].lower()
    if scheme not in schemes or "://" not in value:
        return [f"{field}: {value!r} is not a URI of a supported scheme "
                f"({', '.join(s + '://' for s in schemes)})"]
    if scheme in ("http", "https") and not parsed.hostname:
        return [f"{field}: {value!r} names no host"]
    return []


def scored_names(sweep) -> list[str]:
    """Every score a finished trial of `sweep` carries with its interval: the three abilities,
    the user's named ones, and each lab domain's held-out loss (lab domains keep a held-out
    slice)."""
    scored = ["math", "code", "general", *sweep.evaluate.abilities]
    if sweep.evaluate.heldout_loss.enabled:
        scored += [f"loss_{d}" for d, dom in sweep.domains.items() if dom.is_lab]
    return scored


def trial_metrics(sweep) -> set[str]:
    """What every finished trial reports (besides the per-stage `STAGE_METRIC`s)."""
    names = {"math", "math_flexible", "code", "general", "train_loss", "train_tokens",
             "trained_tokens", "stages_from_cache", "param_delta_l2", "train_seconds",
             "setup_seconds", "eval_seconds", "eval_cache_hit"}
    names |= {f"code_pass_at_{k}" for k in sweep.evaluate.code.k}
    names |= {f"samples_{d}" for d in sweep.domains}
    scored = scored_names(sweep)
    if sweep.evaluate.heldout_loss.enabled:
        names.add("heldout_seconds")
    names |= set(scored)
    names |= {f"{a}_{part}" for a in scored  # evaluate.intervals
              for part in ("ci_low", "ci_high", "n")}
    if sweep.evaluate.general.source == "mt_bench":
        names |= {"mt_bench_turn1", "mt_bench_turn2", "mt_bench_unparsed",
                  "general_judge_failures"} \
            if sweep.evaluate.judge is not None else {"general_references"}
    return names


def metric_problems(sweep) -> list[str]:
    import difflib

    known = trial_metrics(sweep)
    problems = []
    for field, names in (("search.objectives", sweep.search.objectives),
                         ("search.constraints", sweep.search.constraints or {})):
        for name in names:
            if name in known or STAGE_METRIC.match(name):
                continue
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else \
                f"trials report {', '.join(sorted(known))}"
            problems.append(f"{field}: {name!r} is not a metric a trial reports; {hint}")
    return problems


def storage_problems(sweep) -> list[str]:
    from ..storage import is_uri

    problems = []
    for field, value in (("storage", sweep.storage), ("cache_dir", sweep.cache_dir)):
        if value and not is_uri(value) and Path(value.removeprefix("file://")).is_file():
            problems.append(f"{field}: {value!r} is a file; give a directory (or a URI)")
    return problems + uri_problem("search.study_storage", sweep.search.study_storage,
                                  STUDY_SCHEMES)


def max_requests(space, warm_start: list | None = None) -> dict[str, tuple[int, str]]:
    """The most samples any point of the space (or a warm start) asks of each domain, and the
    field that asks it."""
    out: dict[str, tuple[int, str]] = {}

    def ask(domain: str, n: float, field: str) -> None:
        n = math.ceil(n - 1e-9)
        if n > out.get(domain, (0, ""))[0]:
            out[domain] = (n, field)

    if space.counts is not None:
        for m in space.counts.mixtures():
            for d, n in m.items():
                ask(d, n, "search.space.counts")
    elif space.amount is not None:
        amount = max(space.amount.choices or [space.amount.high])
        r = space.ratio_space
        if r.kind == "simplex" and not r.grid:
            for d in space.domains:  # a simplex ratio may give the whole amount to one domain
                ask(d, amount, "search.space.amount (a simplex ratio may give it all to one "
                               "domain)")
        for ratio in ([r.fixed] if r.kind == "fixed" else []) + (r.grid or []):
            total = sum(ratio.values()) or 1.0
            for d, share in ratio.items():
                ask(d, share / total * amount, "search.space.amount × ratio")
    for i, point in enumerate(warm_start or []):
        ratio, amount = point.get("ratio"), point.get("amount")
        for d, n in (point.get("counts") or {}).items():
            ask(d, n, f"search.warm_start[{i}]")
        if ratio and amount:
            total = sum(ratio.values()) or 1.0
            for d, share in ratio.items():
                ask(d, share / total * amount, f"search.warm_start[{i}]")
    return out


def size_problems(space, sweep, sizes: dict[str, tuple[int, str]]) -> list[str]:
    """Mixtures asking a domain for more samples than it has (`sizes`: domain → (size, what
    that size is)), unless the domain may repeat itself (`upsample: true`)."""
    problems = []
    for d, (n, field) in sorted(max_requests(space, sweep.search.warm_start).items()):
        dom = sweep.domains.get(d)
        if dom is None or dom.upsample or d not in sizes or n <= sizes[d][0]:
            continue
        size, what = sizes[d]
        problems.append(f"{field}: asks domains.{d} for up to {n} samples, and it has {size} "
                        f"({what}); set domains.{d}.upsample: true to repeat it, or ask less")
    return problems
