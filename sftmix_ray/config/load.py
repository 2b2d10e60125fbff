"""Loading a sweep: YAML → command-line overrides merged in → one validation of the sweep and its
search space → the cross-checks between them. Every problem is reported at once, each naming its
field path, so a user fixes a sweep in one pass (torchtune's order: overrides first, then
validation, so an override is held to the same rules as the file)."""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from .checks import size_problems
from .point import TrialPoint
from .presets import LAB_DEFAULT_POOL
from .schema import SweepConfig
from .space import SearchSpace


class ConfigError(ValueError):
    """A sweep or search-space file that does not validate; `problems` are 'path: message' lines."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


# A validator's message that names its own fields: one "field.path: message" per line.
_FIELD_LINE = re.compile(r"^[A-Za-z_][\w.\[\]]*: ")


def _valid_keys(model: type[BaseModel], parent_loc: tuple) -> list[str]:
    current: Any = model
    i = 0
    while i < len(parent_loc):
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(parent_loc[i]))
        if field is None:
            return []
        ann = field.annotation
        if getattr(ann, "__origin__", None) is dict:
            value = get_args(ann)[1]
            if not (isinstance(value, type) and issubclass(value, BaseModel)):
                return []
            current = value
            i += 1  # the next part is the user's own dict key
        else:
            models = [a for a in (ann, *get_args(ann))
                      if isinstance(a, type) and issubclass(a, BaseModel)]
            if not models:
                return []
            current = models[0]
        i += 1
    return list(current.model_fields) if isinstance(current, type) else []


def format_errors(model: type[BaseModel], err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        path = ".".join(str(p) for p in loc)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            known = _valid_keys(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else \
                (f"; known keys: {', '.join(known)}" if known else "")
            problems.append(f"{path}: unknown key{hint}")
        elif e["type"] == "missing":
            problems.append(f"{path}: required field is missing")
        elif e["type"] == "value_error" and all(_FIELD_LINE.match(ln) for ln in msg.splitlines()):
            # A cross-field check: its lines name their fields; the input is not dumped.
            problems.extend(f"{path}.{ln}" if path else ln for ln in msg.splitlines())
        elif e["type"] == "model_type" or isinstance(e.get("input"), dict):
            problems.append(f"{path or '(top level)'}: {msg}")
        else:
            problems.append(f"{path or '(top level)'}: {msg} (got {e.get('input')!r})")
    return problems


def read_yaml(path: str | Path) -> Any:
    """The file's data; a key given twice in one mapping is an error (YAML would keep the last
    silently), named by its path and lines."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(path), [f"file not found: {path}"])
    try:
        text = p.read_text()
        duplicates = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader), ())
        if duplicates:
            raise ConfigError(str(path), duplicates)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from None


def _duplicate_keys(node, path: tuple) -> list[str]:
    problems = []
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value
            here = ".".join(map(str, (*path, key)))
            if key in seen:
                problems.append(f"{here}: duplicate key (lines {seen[key] + 1} and "
                                f"{key_node.start_mark.line + 1}); YAML would keep only the last")
            seen.setdefault(key, key_node.start_mark.line)
            problems += _duplicate_keys(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*path[:-1], f"{path[-1]}[{i}]") if path else (i,))
    return problems


def validate_data(model: type[BaseModel], data: Any, source: str):
    if not isinstance(data, dict):
        raise ConfigError(source, [f"expected a mapping at the top level, got "
                                   f"{type(data).__name__}"])
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, format_errors(model, err)) from None


def merge_overrides(data: Any, overrides: dict[str, Any] | None) -> Any:
    """`overrides` ({"search.num_samples": 4, ...}; None values are left out) set into a copy of
    the file's data, before anything is validated."""
    if not overrides or not isinstance(data, dict):
        return data
    merged = copy.deepcopy(data)
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = merged
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return merged


def load_sweep(path: str | Path, overrides: dict[str, Any] | None = None
               ) -> tuple[SweepConfig, SearchSpace]:
    """The sweep (with `overrides` merged in) and its search space, both validated; problems from
    both, and from checking one against the other, reported together."""
    problems: list[str] = []
    data = _resolve_include_paths(merge_overrides(read_yaml(path), overrides), Path(path))
    sweep = space = None
    try:
        sweep = validate_data(SweepConfig, data, str(path))
    except ConfigError as err:
        problems.extend(_mark_overridden(err.problems, overrides))
    space_ref = data.get("search", {}).get("space") if isinstance(data, dict) and \
        isinstance(data.get("search"), dict) else None
    if isinstance(space_ref, str):
        space_path = resolve_relative(space_ref, Path(path))
        try:
            space = validate_data(SearchSpace, read_yaml(space_path), str(space_path))
        except ConfigError as err:
            problems.extend(f"search.space ({space_path}): {p}" for p in err.problems)
    if sweep is not None and space is not None:
        problems.extend(check_space_against_sweep(space, sweep))
    if problems:
        raise ConfigError(str(path), problems)
    return sweep, space


def _mark_overridden(problems: list[str], overrides: dict | None) -> list[str]:
    given = [k for k, v in (overrides or {}).items() if v is not None]
    return [p + " (set on the command line)" if any(p.startswith(f"{k}:") for k in given) else p
            for p in problems]


def _resolve_include_paths(data, sweep_path: Path):
    """evaluate.abilities.*.include_path made absolute, so a trial's worker finds it wherever
    it runs from."""
    abilities = (data.get("evaluate") or {}).get("abilities") if isinstance(data, dict) else None
    for spec in (abilities or {}).values() if isinstance(abilities, dict) else ():
        if isinstance(spec, dict) and isinstance(spec.get("include_path"), str):
            spec["include_path"] = str(resolve_relative(spec["include_path"],
                                                        sweep_path).resolve())
    return data


def resolve_relative(ref: str, sweep_path: Path) -> Path:
    """A path in a sweep file means: relative to the working directory if it exists there,
    else relative to the sweep file's project (its parent's parent), else the sweep's folder."""
    candidates = [Path(ref), sweep_path.parent.parent / ref, sweep_path.parent / ref]
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def check_space_against_sweep(space: SearchSpace, sweep: SweepConfig) -> list[str]:
    problems = size_problems(space, sweep, lab_pool_sizes(sweep))
    for d in space.domains:
        if d not in sweep.domains:
            problems.append(f"search.space.domains: {d!r} is not declared under 'domains' "
                            f"(declared: {', '.join(sweep.domains)})")
    seq = space.options("sequential")
    orders = [("order", seq.order)] if seq.order else []
    orders += [("orders", o) for o in seq.orders or []]
    for field_name, order in orders:
        if sorted(order) != sorted(space.domains):
            problems.append(f"search.space.strategies.sequential.{field_name}: {order} must "
                            f"list each domain once ({space.domains})")
    for name, r in (space.train.items() if space.train else []):
        if name.startswith("lora_") and sweep.train.lora is None:
            problems.append(f"search.space.train.{name}: the sweep trains every weight; set "
                            f"train.lora to search LoRA settings")
        if sweep.search.algorithm == "grid" and r.choices is None:
            problems.append(f"search.space.train.{name}: a grid sweep needs 'choices'")
    ratio = space.ratio_space
    for r in ([ratio.fixed] if ratio.fixed else []) + (ratio.grid or []):
        extra = set(r) - set(space.domains)
        if extra:
            problems.append(f"search.space.ratio: unknown domains {sorted(extra)}")
    if sweep.search.algorithm == "grid" and space.mixture == "ratio":
        if space.amount.choices is None:
            problems.append("search.space.amount: a grid sweep needs 'choices'")
        if ratio.kind == "simplex" and not ratio.grid:
            problems.append("search.space.ratio: a grid sweep needs 'grid' ratios or kind 'fixed'")
    for i, given in enumerate(sweep.search.warm_start or []):
        try:
            point = TrialPoint.from_wire(given)
        except ValidationError as err:
            problems.extend(f"search.warm_start[{i}].{p}" for p in format_errors(TrialPoint, err))
            continue
        problems.extend(f"search.warm_start[{i}]: {p}" for p in space.check_point(point))
    if space.fractions is not None:
        for m in space.fractions.mixtures():
            for d, f in m.items():
                if f > 1 and d in sweep.domains and not sweep.domains[d].upsample:
                    problems.append(f"search.space.fractions: {d}={f:g} is more than the whole "
                                    f"domain; set domains.{d}.upsample: true to repeat it")
    return problems


def lab_pool_sizes(sweep: SweepConfig) -> dict[str, tuple[int, str]]:
    """The sizes known from the sweep file alone: lab pools (files are counted by `data.sizes`
    before a run, every domain after preparation)."""
    return {n: (d.pool or LAB_DEFAULT_POOL, "its lab pool") for n, d in sweep.domains.items()
            if d.is_lab}
