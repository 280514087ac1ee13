"""Imports point down, never into another area's routes, and never round in a circle.

Every import of ``src/optria`` and ``ingest/`` is read from the source (AST): module level and
inside functions, ``import a.b``, ``from a import b``, relative ``from . import x`` /
``from ..web import y``, and ``importlib.import_module("...")`` with a literal name.

Layers, lowest first (``LAYERS`` below); a module may import its own layer and the layers below:

=======  =====================================================================================
base     optria (the package), config, logs, db, migrations, secretbox, embedded_pg, gc_settle
kit      optria.web (templating, charts, flash, errors, formatting, i18n, request helpers),
         optria.timeseries, optria.connectors
areas    identity, tenants, assets, integrations, twin, blackbox, optimization, platform, demo
ingest   the ingest service (``ingest/``): it imports the base, the kit and the areas' job modules
         it runs (optria.twin.jobs, ...); nothing below it imports it
shell    optria.shell (app factory, route table, middleware, sidebar, i18n sources) and optria.cli:
         the only modules that import the areas' routes and the ingest service
=======  =====================================================================================

Rules:

1. No upward import (a kit module importing an area, an area importing the shell or ``ingest``).
   Where the kit needs area knowledge, the shell registers it at start-up
   (``optria.web.templating.register_globals``) or the generic piece moves down.
2. A route module (one that defines ``ROUTES``, the handlers the shell mounts) is imported only by
   the shell and by modules of its own area: areas share services, stores and models, not routes.
3. No cycle among modules, counting imports inside functions: an import moved into a function
   does not make a cycle go away.
4. An import of a project module inside a function says why in a ``# lazy:`` comment on its line
   or the line above (loading asyncua only for the command that needs it, say).

An edge goes to the module named: ``from a.b import c`` to ``a.b.c`` when that is a module,
else to ``a.b`` (its ``__init__``). A submodule's implicit import of its parent package is not
an edge.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (("src", "optria"), (".", "ingest"))   # (directory holding the package, package)

LAYERS: dict[str, tuple[str, ...]] = {
    "base": ("optria", "optria.config", "optria.logs", "optria.db", "optria.migrations", "optria.secretbox",
             "optria.embedded_pg", "optria.gc_settle"),
    "kit": ("optria.web", "optria.timeseries", "optria.connectors"),
    "areas": ("optria.identity", "optria.tenants", "optria.assets", "optria.integrations", "optria.twin",
              "optria.blackbox", "optria.optimization", "optria.platform", "optria.demo"),
    "ingest": ("ingest",),
    "shell": ("optria.shell", "optria.cli"),
}
RANK = {name: i for i, name in enumerate(LAYERS)}
LAZY_MARK = "# lazy:"


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    in_function: bool


def load_modules(root: Path) -> dict[str, Module]:
    modules = {}
    for base, package in SOURCES:
        base_dir = root / base
        for path in sorted((base_dir / package).rglob("*.py")):
            parts = list(path.relative_to(base_dir).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            text = path.read_text(encoding="utf-8")
            modules[".".join(parts)] = Module(".".join(parts), path, is_package, ast.parse(text, str(path)),
                                              tuple(text.splitlines()))
    return modules


def _absolute(module: Module, level: int, name: str | None) -> str:
    """The absolute name of a relative import (``from ..web import x`` in optria.assets.routes: optria.web)."""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    if level > 1:
        package = package[:-(level - 1)]
    return ".".join(package + ([name] if name else []))


def _named(node: ast.AST, module: Module) -> list[str]:
    """The dotted names an import statement (or literal import_module call) may bind."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = _absolute(module, node.level, node.module) if node.level else node.module or ""
        return [f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names]
    if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in ("import_module", "__import__"):
            return [node.args[0].value]
    return []


def _in_functions(tree: ast.Module) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside |= {id(sub) for sub in ast.walk(node) if sub is not node}
    return inside


def _resolve(name: str, modules: dict[str, Module]) -> str | None:
    """The deepest project module a dotted name reaches (``a.b.Thing`` → ``a.b``); None outside the project."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(modules: dict[str, Module]) -> list[Edge]:
    edges = []
    for module in modules.values():
        inside = _in_functions(module.tree)
        for node in ast.walk(module.tree):
            targets = {_resolve(name, modules) for name in _named(node, module)}
            for target in sorted(t for t in targets if t and t != module.name):
                edges.append(Edge(module.name, target, node.lineno, id(node) in inside))
    return edges


def layer_of(name: str) -> str | None:
    best, best_len = None, -1
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            matches = name == prefix or (prefix != "optria" and name.startswith(prefix + "."))
            if matches and len(prefix) > best_len:
                best, best_len = layer, len(prefix)
    return best


def area_of(name: str) -> str:
    return ".".join(name.split(".")[:2])


def is_routes(module: Module) -> bool:
    return any(isinstance(node, (ast.Assign, ast.AnnAssign))
               and any(isinstance(t, ast.Name) and t.id == "ROUTES"
                       for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
               for node in module.tree.body)


def _where(modules: dict[str, Module], root: Path, edge: Edge) -> str:
    return f"{modules[edge.source].path.relative_to(root)}:{edge.line}"


def layer_problems(modules: dict[str, Module], edges: list[Edge], root: Path) -> list[str]:
    problems = [f"{modules[name].path.relative_to(root)}: module {name} is in no layer; add it to LAYERS"
                for name in modules if layer_of(name) is None]
    for edge in edges:
        source, target = layer_of(edge.source), layer_of(edge.target)
        if source is None or target is None:
            continue
        if RANK[target] > RANK[source]:
            problems.append(f"{_where(modules, root, edge)}: {edge.source} ({source}) imports {edge.target} "
                            f"({target}), a layer above it; move the piece it needs down, or let the shell "
                            "register it at start-up")
        elif (is_routes(modules[edge.target]) and source != "shell"
              and area_of(edge.source) != area_of(edge.target)):
            problems.append(f"{_where(modules, root, edge)}: {edge.source} imports {edge.target}, a route module of "
                            f"another area; import the service, store or model it uses instead")
    return problems


def lazy_problems(modules: dict[str, Module], edges: list[Edge], root: Path) -> list[str]:
    problems = []
    for edge in edges:
        if not edge.in_function:
            continue
        lines = modules[edge.source].lines
        said = LAZY_MARK in lines[edge.line - 1] or (edge.line > 1 and LAZY_MARK in lines[edge.line - 2])
        if not said:
            problems.append(f"{_where(modules, root, edge)}: {edge.source} imports {edge.target} inside a function "
                            f"without saying why; import it at the top, or give the reason in a '{LAZY_MARK}' comment")
    return problems


def cycles(modules: dict[str, Module], edges: list[Edge], root: Path) -> list[str]:
    """One line per strongly connected group of modules, naming a cycle through it with file:line."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(start: str) -> None:   # Tarjan's algorithm, iterative
        work = [(start, iter(graph.get(start, {})))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, {}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)

    for name in sorted(modules):
        if name not in index:
            visit(name)
    out = []
    for group in groups:
        members, start = set(group), min(group)
        previous: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in previous:   # breadth first, back to the start
            following = []
            for node in frontier:
                for child in sorted(graph.get(node, {})):
                    if child in members and child not in previous:
                        previous[child] = node
                        following.append(child)
            frontier = following
        path = [start]
        while len(path) == 1 or path[-1] != start:
            path.append(previous[path[-1]])
        path.reverse()
        steps = " → ".join(f"{a} ({_where(modules, root, graph[a][b])}"
                           f"{', in a function' if graph[a][b].in_function else ''})" for a, b in zip(path, path[1:]))
        out.append(f"import cycle: {steps} → {start}")
    return out


def check(root: Path) -> list[str]:
    modules = load_modules(root)
    edges = import_edges(modules)
    return layer_problems(modules, edges, root) + cycles(modules, edges, root) + lazy_problems(modules, edges, root)


def test_imports_point_down_without_cycles() -> None:
    problems = check(ROOT)
    assert not problems, "imports break the layer rules (tests/unit/test_layers.py):\n  " + "\n  ".join(problems)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_finds_each_kind_of_problem(tmp_path: Path) -> None:
    """A small tree with one of each problem: the checker names every one with its file and line."""
    _write(tmp_path, {
        "src/optria/__init__.py": "",
        "src/optria/db.py": "",
        "src/optria/web/__init__.py": "",
        "src/optria/web/templating.py": "from ..assets import store\n",                    # upward, relative
        "src/optria/assets/__init__.py": "",
        "src/optria/assets/store.py": "def f():\n    from optria.twin import cards\n",    # lazy, no reason
        "src/optria/assets/routes.py": "ROUTES = []\n",
        "src/optria/twin/__init__.py": "",
        "src/optria/twin/cards.py": "from optria.assets import store\n",
        "src/optria/twin/routes.py": "from optria.assets import routes\nROUTES = []\n",  # sibling's routes
        "src/optria/shell/__init__.py": "",
        "src/optria/shell/app.py": "from optria.assets import routes\nfrom optria.twin import routes as t\n",
        "ingest/__init__.py": "",
        "ingest/service.py": "import importlib\n\nimport optria.db\n\n\ndef run():\n"
                             "    # lazy: only when it runs\n    importlib.import_module('optria.twin.cards')\n",
    })
    problems = check(tmp_path)
    assert any(p.startswith("src/optria/web/templating.py:1: optria.web.templating (kit) imports optria.assets.store")
               for p in problems), problems
    assert any(p.startswith("src/optria/twin/routes.py:1: optria.twin.routes imports optria.assets.routes, a route "
                            "module of another area") for p in problems), problems
    assert any(p.startswith("import cycle: optria.assets.store (src/optria/assets/store.py:2, in a function) → "
                            "optria.twin.cards (src/optria/twin/cards.py:1) → optria.assets.store")
               for p in problems), problems
    assert any(p.startswith("src/optria/assets/store.py:2: optria.assets.store imports optria.twin.cards inside a "
                            "function without saying why") for p in problems), problems
    assert len(problems) == 4, problems   # the shell's routes, ingest's (explained) lazy import: no problem
