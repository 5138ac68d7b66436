"""Which way the arrows point (../shared/DESIGN.md): every import of every module, read with ``ast``
(imports inside functions included), checked against the forbidden arrows and for cycles between
packages. Arrows that main still has are listed in KNOWN with the step that removes them: the test
fails on any new one, and on a listed one that is gone (so the list only shrinks)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# importer package -> what it must not import (besides: nothing imports cli, only cli imports demo,
# and config imports only the config classes it composes)
FORBIDDEN = {
    "nichetune.data": ("train", "eval", "serve", "monitor"),
    "nichetune.methods": ("train", "eval", "run"),
    "nichetune.tasks": ("train", "eval", "run"),
    "nichetune.run": ("train", "eval", "serve"),
    "nichetune.eval": ("train",),
    "nichetune.export": ("eval", "serve"),
    "nichetune.registry": ("train", "eval", "serve"),
    "nichetune.serve": ("train", "eval", "tune", "recommend", "data.audit"),
    "nichetune.monitor": ("serve",),
    "nichetune.retrieval": ("train", "serve", "monitor", "tune", "recommend"),
    # eval, demo and tune reach training through the public API (nichetune.train_recipe), never its engine
    "nichetune.demo": ("train",),
    "nichetune.tune": ("train",),
    # models is a floor below run: a run as a model reference is resolved above it (run/, infer/)
    "nichetune.models": ("run", "train", "eval", "methods", "tasks"),
}
# the config classes the recipe composes (methods', tasks', data's FieldMap) and the checks it shares with
# the CLI (split shares, readable regular files, regexes), and the truncation modes it validates (a torch-free
# module, so the recipe and the readers share one list); nothing that loads or trains
CONFIG_MAY_IMPORT = ("nichetune.methods.configs", "nichetune.tasks", "nichetune.data.schema", "nichetune.data.split",
                     "nichetune.data.readers", "nichetune.errors", "nichetune.patterns", "nichetune.truncation")

# Arrows main still has, each with the step that removes it: the test fails on any new one, and on a listed
# one that is gone (so the list only shrinks). Issue 14 emptied both.
KNOWN: set[tuple[str, str]] = set()
KNOWN_BACK_EDGES: set[tuple[str, str]] = set()


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> set[str]:
    """Absolute names of the nichetune modules ``path`` imports, anywhere in its body."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # "from . import x" names submodule x
    return {f for f in found if f == "nichetune" or f.startswith("nichetune.")}


def module_graph(root: Path) -> dict[str, set[str]]:
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    return {name: {i for i in imports_of(path, root) if i in modules or i.rsplit(".", 1)[0] in modules}
            for name, path in modules.items()}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    out = set()
    for importer, targets in graph.items():
        for target in targets:
            if _under(target, "nichetune.cli") and not _under(importer, "nichetune.cli") \
                    and importer != "nichetune.__main__":  # the `python -m nichetune` entry point
                out.add((importer, target))
            if _under(target, "nichetune.demo") and not _under(importer, "nichetune.cli") \
                    and not _under(importer, "nichetune.demo") and importer != "nichetune":
                out.add((importer, target))
            if _under(importer, "nichetune.config") and not _under(target, "nichetune.config") \
                    and not any(_under(target, ok) for ok in CONFIG_MAY_IMPORT):
                out.add((importer, target))
            for source, forbidden in FORBIDDEN.items():
                if _under(importer, source) and any(_under(target, f"nichetune.{f}") for f in forbidden):
                    out.add((importer, target if target in graph else target.rsplit(".", 1)[0]))
    return out


def _pkg(name: str) -> str:
    return ".".join(name.split(".")[:2])


def package_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(package, package) for every import between two nichetune.X packages (the root excluded)."""
    return {(_pkg(a), _pkg(t)) for a, ts in graph.items() for t in ts
            if _pkg(t) != _pkg(a) and "nichetune" not in (_pkg(a), _pkg(t))}


def package_cycles(graph: dict[str, set[str]], ignore=frozenset()) -> set[frozenset[str]]:
    """Strongly connected sets of packages (nichetune.X) with more than one member (Tarjan)."""
    edges: dict[str, set[str]] = {}
    for a, b in package_edges(graph) - set(ignore):
        edges.setdefault(a, set()).add(b)
    index, low, stack, on, out, counter = {}, {}, [], set(), set(), [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                out.add(frozenset(group))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_no_new_forbidden_arrow_and_the_known_ones_only_shrink():
    found = violations(module_graph(SRC))
    assert found - KNOWN == set(), f"forbidden imports (see shared/DESIGN.md): {sorted(found - KNOWN)}"
    assert KNOWN - found == set(), f"gone, so remove from KNOWN: {sorted(KNOWN - found)}"


def test_no_new_import_cycle_between_packages():
    graph = module_graph(SRC)
    assert package_cycles(graph, ignore=KNOWN_BACK_EDGES) == set()
    assert KNOWN_BACK_EDGES <= package_edges(graph), "a known back edge is gone: remove it from KNOWN_BACK_EDGES"


@pytest.mark.parametrize("planted, expected", [
    ("nichetune/data/leak.py", ("nichetune.data.leak", "nichetune.train.loop")),
    ("nichetune/eval/leak.py", ("nichetune.eval.leak", "nichetune.train.loop")),
    ("nichetune/methods/leak.py", ("nichetune.methods.leak", "nichetune.train.loop")),
])
def test_a_planted_forbidden_import_is_caught_even_inside_a_function(planted, expected, tmp_path):
    root = tmp_path / "src"
    for rel in ("nichetune/__init__.py", "nichetune/train/__init__.py", "nichetune/train/loop.py",
                "nichetune/data/__init__.py", "nichetune/eval/__init__.py", "nichetune/methods/__init__.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / planted).write_text("def helper():\n    from ..train.loop import fit\n    return fit\n")
    assert expected in violations(module_graph(root))


def test_a_planted_cycle_is_caught(tmp_path):
    root = tmp_path / "src"
    for rel, text in (("nichetune/__init__.py", ""), ("nichetune/a/__init__.py", ""), ("nichetune/b/__init__.py", ""),
                      ("nichetune/a/x.py", "from ..b import y\n"), ("nichetune/b/y.py", "import nichetune.a.x\n")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    assert package_cycles(module_graph(root)) == {frozenset({"nichetune.a", "nichetune.b"})}


TASK_NAMES = {"classification", "sft", "completion", "causal"}


def task_name_comparisons(root: Path) -> list[str]:
    """``x == "classification"``-style comparisons (==, !=, in, not in) against a task name, outside tasks/."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        if _under(name, "nichetune.tasks"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            literals = [c.value for o in operands for c in ([o] + list(getattr(o, "elts", [])))
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            if TASK_NAMES & set(literals):
                found.append(f"{name}:{node.lineno}")
    return found


def test_no_module_outside_tasks_compares_a_task_name():
    assert task_name_comparisons(SRC) == []


def test_a_planted_task_comparison_is_caught(tmp_path):
    root = tmp_path / "src"
    (root / "nichetune" / "eval").mkdir(parents=True)
    (root / "nichetune" / "__init__.py").write_text("")
    (root / "nichetune" / "eval" / "x.py").write_text(
        'def f(recipe):\n    return 200 if recipe.task in ("classification",) else 40\n')
    assert task_name_comparisons(root) == ["nichetune.eval.x:2"]
