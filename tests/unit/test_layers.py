"""The layering of ``asyncspark/`` (ARCHITECTURE.md), enforced.

Reads every module's imports with ``ast`` — module-level and function-local ones alike;
only imports under ``if TYPE_CHECKING:`` are left out, since they never run — and fails
when a module imports from a higher layer, when an import cycle leaves the lineage layer,
when a module has no layer, no opening docstring, or more than 650 lines.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[2] / "asyncspark"
MAX_LINES = 650

# Lowest first. A module's layer is the one of its longest matching prefix.
LAYERS: dict[str, int] = {
    # L0 leaves
    "errors": 0, "conf": 0, "conf_keys": 0, "runtime": 0, "_files": 0, "functions": 0, "sizes": 0,
    "threads": 0, "pending": 0, "storage.level": 0, "taskcontext": 0, "_accel": 0,
    "statcounter": 0, "approx": 0, "fs": 0,
    "files": 0, "tls": 0,
    # L1 data and wire format
    "serializers": 1, "partitioner": 1, "hyperloglog": 1, "transport.codec": 1,
    "transport.messages": 1, "transport.handshake": 1,
    # L2 I/O
    "transport": 2,
    # L3 engine
    "scheduler": 3, "executor": 3, "shuffle": 3, "storage": 3, "listener": 3,
    # L4 lineage
    "dependency": 4, "rdd": 4, "pairs": 4, "rdds": 4, "planner": 4, "accumulators": 4,
    "broadcast": 4, "output": 4, "aggregations": 4, "sampling": 4, "cleaner": 4,
    "rdd_actions": 4,
    # L5 driver
    "": 5, "context": 5, "context_files": 5, "context_stop": 5, "context_jobs": 5, "callsite": 0,
    "lifetime": 5, "sync": 5, "sync_rdd": 5,
    "sync_actions": 5, "cli": 5, "bench": 5, "scheduler.backends": 5,
    "web": 5, "ui": 5, "ui.session": 5, "ui.store": 3, "ui.shapes": 3, "ui.tracker": 3,
    "eventlog": 3, "progress": 3, "metrics": 3, "logs": 0, "ui.history": 5, "jobtags": 5,
}
LAYER_NAMES = ["leaves", "data/wire", "I/O", "engine", "lineage", "driver"]
# The one cycle allowed: the RDD base class builds its subclasses.
CYCLE_OK = ("rdd", "pairs", "rdds", "dependency", "planner", "output", "aggregations",
            "sampling")


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _layer(mod: str) -> int | None:
    parts = mod.split(".") if mod else []
    for n in range(len(parts), -1, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    return None


def _resolve(mod: str, is_pkg: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The asyncspark modules (relative dotted names) that ``node`` imports."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = mod.split(".") if mod else []
            if not is_pkg:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            full = ".".join(["asyncspark", *base] + ([node.module] if node.module else []))
        else:
            full = node.module or ""
        # `from x import y` imports module x.y when there is one, else (a name in) x
        names = [f"{full}.{a.name}" if _rel(f"{full}.{a.name}") in MODULES else full
                 for a in node.names]
    out = []
    for name in names:
        if name != "asyncspark" and not name.startswith("asyncspark."):
            continue
        rel = _rel(name)
        while rel not in MODULES and "." in rel:
            rel = rel.rsplit(".", 1)[0]
        if rel in MODULES and rel != mod:
            out.append(rel)
    return out


def _rel(name: str) -> str:
    return name[len("asyncspark."):] if name.startswith("asyncspark.") else ""


def _imports_of(mod: str, is_pkg: bool, source: str) -> set[str]:
    """The asyncspark modules that ``source`` (module ``mod``) imports when it runs."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.update(_resolve(mod, is_pkg, child))
            visit(child)

    visit(ast.parse(source))
    return found


def _edges() -> dict[str, set[str]]:
    return {mod: _imports_of(mod, path.name == "__init__.py", path.read_text(encoding="utf-8"))
            for mod, path in MODULES.items()}


EDGES = _edges()


def _sccs(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    return [c for c in out if len(c) > 1]


def test_every_module_has_a_layer():
    missing = [m or "asyncspark" for m in MODULES if _layer(m) is None]
    assert not missing, f"modules with no layer in ARCHITECTURE.md / LAYERS: {missing}"


def test_imports_point_down():
    bad = _violations(EDGES)
    assert not bad, "imports from a higher layer:\n" + "\n".join(bad)


def test_cycles_only_inside_lineage():
    def lineage(mod: str) -> bool:
        return mod.split(".")[0] in CYCLE_OK

    bad = [c for c in _sccs(EDGES) if not all(lineage(m) for m in c) or len(c) > 6]
    assert not bad, f"import cycles outside the lineage layer (or over 6 modules): {bad}"


@pytest.mark.parametrize("mod", sorted(MODULES), ids=lambda m: m or "asyncspark")
def test_module_is_documented_and_short(mod):
    path = MODULES[mod]
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n") + (not text.endswith("\n") and bool(text))
    assert lines <= MAX_LINES, f"{path.name}: {lines} lines (at most {MAX_LINES})"
    if text.strip():
        assert ast.get_docstring(ast.parse(text)), f"{path}: no opening docstring"


def _violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, targets in edges.items():
        mine = _layer(mod)
        for target in sorted(targets):
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(f"{mod or 'asyncspark'} ({LAYER_NAMES[mine]}) imports {target} "
                           f"({LAYER_NAMES[theirs]})")
    return bad


def test_the_checker_sees_a_violation():
    """The walker itself: a function-local upward import is an edge (and a violation), a
    TYPE_CHECKING one is not; relative imports resolve from packages and modules."""
    src = ("from typing import TYPE_CHECKING\n"
           "from .errors import ConfigError\n"
           "if TYPE_CHECKING:\n    from .rdd import RDD\n"
           "def refuse(fn):\n    from .context import Context\n")
    edges = {"serializers": _imports_of("serializers", False, src)}
    assert edges["serializers"] == {"errors", "context"}
    assert _violations(edges) == ["serializers (data/wire) imports context (driver)"]
    nested = _imports_of("shuffle.writer", False, "from ..executor import executor\n")
    assert nested == {"executor.executor"}
