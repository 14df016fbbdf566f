"""No circular imports inside clue_ext, and every module imports on its own.

A circle between two modules of the package works or fails depending on
which of them a program imports first, so it is checked two ways: on the
graph of the package's imports read from the source (every import
statement, those inside functions included, since a lazy import is how a
circle usually hides), and by importing each module first in a process that
has imported nothing of clue_ext yet.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set

import clue_ext

PACKAGE = "clue_ext"
PACKAGE_DIR = Path(clue_ext.__file__).resolve().parent


def package_modules() -> Dict[str, Path]:
    """{dotted module name: source file} of every module of the package."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = (PACKAGE,) + path.relative_to(PACKAGE_DIR).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _runtime_imports(tree: ast.AST):
    """Import statements anywhere in the tree, except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if _is_type_checking_block(node):
            children = list(node.orelse)
        stack.extend(children)


def imported_modules(name: str, source: str, modules: Dict[str, Path]) -> Set[str]:
    """Modules of the package that module `name`, whose code is `source`,
    imports. `from P import x` imports module P.x when that is a module, else
    P itself (a name defined in P). The parent packages Python imports
    implicitly are not counted: every module would otherwise form a circle
    with its package's __init__."""
    is_package = modules[name].name == "__init__.py"
    found = set()
    for node in _runtime_imports(ast.parse(source, str(modules[name]))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        for alias in node.names:
            sub = f"{origin}.{alias.name}"
            found.add(sub if sub in modules else origin)
    found.discard(name)
    return {m for m in found if m in modules}


def import_graph() -> Dict[str, Set[str]]:
    modules = package_modules()
    return {name: imported_modules(name, path.read_text(), modules) for name, path in modules.items()}


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One cycle of the graph as [a, b, ..., a], or None."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert len(graph) > 50 and graph["clue_ext.ops"] == {"clue_ext._extension"}
    cycle = find_cycle(graph)
    assert cycle is None, "circular import: " + " -> ".join(cycle)


def test_the_graph_sees_lazy_and_relative_imports():
    # The three circles issue 20 untied, written as they were: a lazy
    # import inside a function closes each of them.
    graph = import_graph()
    graph["clue_ext._extension"].add("clue_ext.ops")
    assert find_cycle(graph) is not None
    modules = package_modules()
    sources = {"clue_ext.kmeans": "from . import _inputs\nfrom .warm_start import projected_lloyd_start\n",
               "clue_ext.warm_start": "def f():\n    from .kmeans import mean_feature_variance\n",
               "clue_ext.experiments.plots": "from .reporting import accuracy_stats\n",
               "clue_ext.experiments.reporting": "def g():\n    from .plots import plot_accuracy\n",
               "clue_ext.experiments": "from .. import build_info\nimport clue_ext.ops\nimport json\n"}
    seen = {name: imported_modules(name, source, modules) for name, source in sources.items()}
    assert seen["clue_ext.kmeans"] == {"clue_ext._inputs", "clue_ext.warm_start"}
    assert seen["clue_ext.warm_start"] == {"clue_ext.kmeans"}
    assert seen["clue_ext.experiments.plots"] == {"clue_ext.experiments.reporting"}
    assert seen["clue_ext.experiments.reporting"] == {"clue_ext.experiments.plots"}
    assert seen["clue_ext.experiments"] == {"clue_ext", "clue_ext.ops"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


# Forks a child per module of the package, which imports that module first:
# the child starts with nothing of clue_ext in sys.modules, as a fresh
# interpreter would. The third-party modules they import (torch above all)
# are imported once before, by the parent, so as not to pay for them a
# hundred times: a first child imports the whole package and reports which
# other modules that loaded.
_ISOLATED_IMPORTS = r"""
import importlib, json, os, sys, traceback

ours = lambda m: m == "clue_ext" or m.startswith("clue_ext.")


def in_child(work):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            message = work()
        except BaseException:
            message = traceback.format_exc()[-4000:]
        with os.fdopen(write, "w") as pipe:
            pipe.write(message)
        os._exit(0)
    os.close(write)
    return pid, read


def collect(pid, read):
    with os.fdopen(read) as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    return message if message or not status else f"exit status {status}"


def import_all():
    before = set(sys.modules)
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException:
            pass
    return json.dumps([m for m in sys.modules if m not in before and not ours(m)])


def import_first(name):
    return lambda: importlib.import_module(name) and ""


modules = json.loads(sys.argv[1])
for name in json.loads(collect(*in_child(import_all))):
    try:
        importlib.import_module(name)
    except BaseException:
        pass
assert not [m for m in sys.modules if ours(m)]
failures, running = {}, []
for name in modules + [None] * os.cpu_count():  # the Nones let the last children finish
    if len(running) >= os.cpu_count() or name is None and running:
        done, pid, read = running.pop(0)
        message = collect(pid, read)
        if message:
            failures[done] = message
    if name is not None:
        running.append((name, *in_child(import_first(name))))
print(json.dumps(failures))
"""


def test_every_module_imports_first_in_a_fresh_process():
    names = [name for name in package_modules() if not name.endswith("__main__")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(PACKAGE_DIR.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    done = subprocess.run([sys.executable, "-c", _ISOLATED_IMPORTS, json.dumps(names)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    assert not failures, "\n\n".join(f"{name}:\n{error}" for name, error in failures.items())
