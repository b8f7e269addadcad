"""The layout's import rules (README, "What is here"), read from the code: every import statement of every
Python file, at any depth, is parsed (nothing is imported or run).

Rooms and what each may import besides the standard library and itself:

    tinytorch/            numpy, tqdm (its dependencies); only inside a function: matplotlib (plots are optional)
                          and torch (profiler.torch_if_installed: the notebooks' comparisons, never a dependency)
    course/NN_name/       tinytorch, course (a notebook finds the datasets next to the repository); numpy,
                          matplotlib, tqdm, torch (comparisons, guarded)
    course/milestones/    tinytorch, course.milestones; numpy, tqdm, matplotlib; IPython only when a kernel runs
                          the milestone (show_plot: the curve inline in the notebook)
    course/build/         tinytorch.export (the markers the student's export reads too); jupytext, nbformat; only
                          inside a function: nbclient (recording the PyTorch comparisons runs the notebooks)
    autograder/           course.build, hub_config, autograder.hidden, autograder.ttgrade.protocol;
                          nbgrader, nbformat, traitlets, jupyter_core, otter, tqdm
    autograder/hidden/    (the hidden test files) ttgrade, otter, numpy, and tinytorch inside a probe (a function
                          run on the student's tinytorch or the reference); the package's reader: ttgrade.protocol
    autograder/ttgrade/   itself, numpy, otter; and tinytorch inside a function: the reference, which it serves
                          from the bundle's memory (it is never on the container's disk)
    hub_config.py         yaml, jsonschema, sqlalchemy (the hub's users on PostgreSQL: JupyterHub's own), and what
                          JupyterHub loads by name
    bench/                anything above (it measures them) and torch
    tests/                anything

No circle between modules, but tinytorch.tensor <-> tinytorch.autograd, by design: module 02 stands alone
(its Tensor.backward imports module 05's walk when first called). Imports under ``if TYPE_CHECKING:`` never
run and do not count.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
FIRST_PARTY = {"tinytorch", "course", "autograder", "bench", "hub_config", "ttgrade", "tests"}

# room (a path prefix, the longest match wins) -> (first-party module prefixes, third-party top-level names)
RULES: dict[str, tuple[set[str], set[str]]] = {
    "tinytorch/": ({"tinytorch"}, {"numpy", "tqdm", "matplotlib", "torch"}),
    "course/": ({"tinytorch", "course"}, {"numpy", "matplotlib", "tqdm", "torch"}),
    "course/milestones/": ({"tinytorch", "course.milestones"}, {"numpy", "tqdm", "matplotlib", "IPython"}),
    "course/build/": ({"course.build", "tinytorch.export"}, {"jupytext", "nbformat", "nbclient"}),
    "autograder/": ({"autograder", "course.build", "hub_config"},
                    {"nbgrader", "nbformat", "traitlets", "jupyter_core", "otter", "tqdm", "tornado"}),
    "autograder/hidden/": ({"ttgrade", "tinytorch", "autograder.ttgrade.protocol"}, {"otter", "numpy"}),
    "autograder/ttgrade/": ({"ttgrade", "tinytorch"}, {"numpy", "otter"}),
    "hub_config.py": (set(), {"yaml", "jsonschema", "sqlalchemy"}),
}
ONLY_IN_FUNCTIONS = {  # room -> imports it may make only inside a function body, with the reason above
    "tinytorch/": {"matplotlib", "torch"},
    "course/build/": {"nbclient"},
    "autograder/ttgrade/": {"tinytorch"},
    "autograder/hidden/": {"tinytorch"},
}
BY_DESIGN_CIRCLES = [{"tinytorch.tensor", "tinytorch.autograd"}]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[:2] == ["autograder", "ttgrade"]:
        parts = parts[1:]  # the grading container imports it as `ttgrade` (relative imports say the same)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path, known: set[str] = frozenset()) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function, line) for every import in the file; relative ones resolved.
    ``from pkg import name`` counts as importing ``pkg.name`` when that is one of the ``known`` modules."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # imports for type hints only: never run
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package[: len(package) - child.level + 1] + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in child.names]
                # `from pkg import submodule` imports pkg.submodule; `from pkg import name` imports pkg
                found.extend((n if n in known else base, in_function, child.lineno) for n in names)
            visit(child, inner)
    visit(tree, False)
    return found


def checked_files() -> list[Path]:
    files = [p for folder in ("tinytorch", "course", "autograder") for p in sorted((ROOT / folder).rglob("*.py"))]
    return [p for p in files if "__pycache__" not in p.parts] + [ROOT / "hub_config.py"]


def room(path: Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    return max((r for r in RULES if rel.startswith(r) or rel == r), key=len)


def rule_breaks(files: list[Path]) -> list[str]:
    problems = []
    known = {module_name(p) for p in files}
    for path in files:
        where = room(path)
        own, third = RULES[where]
        rel = path.relative_to(ROOT).as_posix()
        for name, in_function, line in imports(path, known):
            top = name.split(".")[0]
            if top in STDLIB:
                continue
            if top in FIRST_PARTY:
                allowed = any(name == p or name.startswith(p + ".") for p in own)
            else:
                allowed = top in third
            if not allowed:
                problems.append(f"{rel}:{line}: imports {name} (the rule of {where}: {sorted(own | third)})")
            elif not in_function and top in ONLY_IN_FUNCTIONS.get(where, set()):
                problems.append(f"{rel}:{line}: imports {name} at module level (only inside a function in {where})")
    return problems


def circles(files: list[Path]) -> list[list[str]]:
    """Every cycle of the first-party module graph (one per strongly connected component of two or more)."""
    names = {module_name(p): p for p in files}
    graph = {m: {n for n, _, _ in imports(p, set(names)) if n in names and n != m} for m, p in names.items()}
    # `import a.b.c` also runs a and a.b: count the package __init__ files on the way
    for m in graph:
        graph[m] |= {".".join(n.split(".")[:i]) for n in list(graph[m]) for i in range(1, n.count(".") + 1)
                     if ".".join(n.split(".")[:i]) in names and ".".join(n.split(".")[:i]) != m
                     and not m.startswith(".".join(n.split(".")[:i]) + ".")}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def strongconnect(v: str) -> None:  # Tarjan's algorithm, recursive: the graph is a few dozen modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return [c for c in found if set(c) not in BY_DESIGN_CIRCLES]


def test_every_import_follows_its_rooms_rule():
    problems = rule_breaks(checked_files())
    assert not problems, "imports against the layout's rules:\n" + "\n".join(problems)


def test_no_import_circle():
    found = circles(checked_files())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_a_circle_and_a_crossing(tmp_path, monkeypatch):
    """The two checks above can fail: a course/build module that imports the autograder, which imports it back."""
    for rel in ("course/build/x.py", "autograder/y.py", "autograder/__init__.py", "course/build/__init__.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "course/build/__init__.py").write_text("")
    (tmp_path / "autograder/__init__.py").write_text("")
    (tmp_path / "course/build/x.py").write_text("def f():\n    from autograder import y\n")
    (tmp_path / "autograder/y.py").write_text("from course.build import x\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    files = [tmp_path / "course/build/x.py", tmp_path / "autograder/y.py"]
    assert rule_breaks(files) == ["course/build/x.py:2: imports autograder.y (the rule of course/build/: "
                                  "['course.build', 'jupytext', 'nbclient', 'nbformat', 'tinytorch.export'])"]
    assert circles(files) == [["autograder.y", "course.build.x"]]


@pytest.mark.parametrize("folder", ["course/build", "autograder"])
def test_functions_are_short_or_say_why(folder):
    """No function over 60 lines in course/build/ or autograder/ unless its docstring says why it is long."""
    long = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                if "long because" not in (ast.get_docstring(node) or ""):
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: "
                                f"{node.end_lineno - node.lineno + 1} lines")
    assert not long, "functions over 60 lines (split them, or say in the docstring why they are 'long because')\n" \
        + "\n".join(long)


def test_one_reader_of_the_course_config():
    """hub_config.py is the only file that parses YAML, i.e. the course config (tests aside)."""
    readers = [p.relative_to(ROOT).as_posix() for p in checked_files() + sorted((ROOT / "bench").rglob("*.py"))
               if "yaml.safe_load(" in p.read_text() or "yaml.load(" in p.read_text()]
    assert readers == ["hub_config.py"]
