"""The shape of the package, checked: rooms import only rooms below them, no module imports
itself back through others, and rooms stay small. The order is the README's table of rooms."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sftmix_ray"

# Bottom to top. A room may import its own modules and any room listed before it.
LAYERS = [
    {"digests", "atomic", "storage", "redact", "progress"},  # helpers
    {"config"},                        # typed sweep, space and trial point; loading
    {"data"},                          # sources → tokens (cached), mixture arithmetic
    {"plan"},                          # strategy → stages, the data manifest
    {"evaluate"},                      # generation and scoring, evaluation sets and cache
    {"train"},                         # the SFT loop inside a Train worker
    {"pareto"},                        # non-dominated sets, ranks, hypervolume
    {"analysis"},                      # fronts over runs
    {"tracking"},                      # every MLflow read and write
    {"report"},                        # tables, figures, findings
    {"search"},                        # spaces → Optuna/grid, the trainable, the tuner
    {"cli"},                           # the command line
]
RANK = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Package modules `name` imports anywhere in its body (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("sftmix_ray"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("sftmix_ray"):
                target = node.module
            else:
                continue
            for alias in node.names:  # `from . import lab` imports a module
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in MODULES else target)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_room_has_a_layer():
    rooms = {_room(m) for m in MODULES} - {"__init__"}
    assert rooms <= set(RANK), f"rooms missing from LAYERS: {sorted(rooms - set(RANK))}"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} → {t}" for m, targets in graph.items() for t in targets
                  if _room(m) in RANK and _room(t) in RANK and RANK[_room(t)] > RANK[_room(m)])


def circles_in(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    circles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                circles.append(" → ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return circles


def test_imports_go_only_down_the_layers():
    upward = upward_imports(GRAPH)
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def test_the_import_map_has_no_circles():
    circles = circles_in(GRAPH)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_checks_catch_what_they_are_for():
    graph = {"sftmix_ray.data.prepare": {"sftmix_ray.evaluate.benchmarks"},
             "sftmix_ray.evaluate.benchmarks": {"sftmix_ray.data.lab"},
             "sftmix_ray.data.lab": {"sftmix_ray.data.prepare"}}
    assert upward_imports(graph) == ["sftmix_ray.data.prepare → sftmix_ray.evaluate.benchmarks"]
    assert circles_in(graph) == ["sftmix_ray.data.lab → sftmix_ray.data.prepare → "
                                 "sftmix_ray.evaluate.benchmarks → sftmix_ray.data.lab"]
    # and the real graph is the one the checks read: lazy imports inside functions count
    assert "sftmix_ray.data.lab" in GRAPH["sftmix_ray.evaluate.sets"]
    assert "sftmix_ray.train.worker" in GRAPH["sftmix_ray.search.trial"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_rooms_stay_small(name):
    path = MODULES[name]
    lines = path.read_text().splitlines()
    assert len(lines) <= MAX_MODULE_LINES, f"{name}: {len(lines)} lines"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for n in ast.walk(ast.parse("\n".join(lines)))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{name}: {', '.join(long)}"
