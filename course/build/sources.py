"""Reading a module's source: where the modules are, their cells, and the markers inside them.

Each module lives once, in ``course/NN_name/NN_name.py`` (a jupytext "percent" file with nbgrader
cell metadata). Cells whose first line is ``#| export`` are the module's code; its ``#| default_exp
<target>`` line says it goes to ``tinytorch/<target>.py`` (the markers are tinytorch.export's: the
student's export reads the same ones). Code students write sits between ``### BEGIN SOLUTION`` and
``### END SOLUTION``; a written answer's mark scheme between ``=== BEGIN MARK SCHEME ===`` and
``=== END MARK SCHEME ===``. Grade cells (nbgrader ``grade: true`` code cells) are the visible tests.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jupytext
import nbformat

# The student's export reads the same cells with the same markers: one definition, tinytorch.export's.
from tinytorch.export import DEFAULT_EXP, cell_source, is_export_cell

__all__ = ["cell_source", "is_export_cell"]  # re-exported for the rest of the build

COURSE = Path(__file__).resolve().parent.parent
ROOT = COURSE.parent
PACKAGE = ROOT / "tinytorch"
CHECKS = PACKAGE / "checks"
MILESTONES = COURSE / "milestones"  # programs on tinytorch; students get them beside the skeleton

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
MARK_SCHEME = ("=== BEGIN MARK SCHEME ===", "=== END MARK SCHEME ===")


class CourseError(Exception):
    """A course source breaks the format described above (or in course/README.md)."""


@dataclass(frozen=True)
class Module:
    number: str  # "02"
    name: str    # "tensor"
    path: Path   # course/02_tensor/02_tensor.py

    @property
    def slug(self) -> str:
        return f"{self.number}_{self.name}"

    @property
    def source(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def course_modules() -> list[Module]:
    """Every module folder ``course/NN_name`` with its source ``NN_name.py``, in course order."""
    found = []
    for folder in sorted(COURSE.glob("[0-9][0-9]_*")):
        number, name = folder.name.split("_", 1)
        path = folder / f"{folder.name}.py"
        if not path.exists():
            raise CourseError(f"{folder.relative_to(ROOT)} has no source file {path.name}")
        found.append(Module(number, name, path))
    return found


def find_module(slug: str) -> Module:
    """The module named ``NN_name`` (an assignment's name)."""
    for module in course_modules():
        if module.slug == slug:
            return module
    raise CourseError(f"no module {slug!r} in {COURSE}")


def read_notebook(module: Module) -> nbformat.NotebookNode:
    nb = jupytext.read(module.path)
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("lines_to_next_cell", None)  # jupytext bookkeeping that nbgrader and readers do not need
        cell.id = f"{module.slug}-{index:03d}"  # nbformat draws random ids; the build must be deterministic
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nb


def export_target(nb: nbformat.NotebookNode, module: Module) -> str:
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if cell.cell_type == "code" and line.startswith(DEFAULT_EXP):
                return line[len(DEFAULT_EXP):].strip()
    raise CourseError(f"{module.source}: no '{DEFAULT_EXP}<name>' line says where its code goes")


def is_test_cell(cell: Mapping[str, Any]) -> bool:
    """A visible test: an autograded code cell (nbgrader ``grade`` and not ``solution``). Works on nbformat
    cells and on the plain dicts of a notebook read as JSON."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade", False)) and not meta.get("solution", False)


def test_name(grade_id: str) -> str:
    """The visible test's function name for a grade cell (``tinytorch/checks``, the grading results)."""
    name = re.sub(r"\W", "_", grade_id)
    return name if name.startswith("test_") else f"test_{name}"


def strip_solution_markers(code: str, where: str) -> str:
    """The reference keeps the solution code and drops the marker lines."""
    lines, depth = [], 0
    for line in code.splitlines():
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            depth += 1
        elif marker == END_SOLUTION:
            depth -= 1
        else:
            lines.append(line)
        if depth not in (0, 1):
            raise CourseError(f"{where}: unbalanced {BEGIN_SOLUTION} / {END_SOLUTION}")
    if depth:
        raise CourseError(f"{where}: {BEGIN_SOLUTION} without {END_SOLUTION}")
    return "\n".join(lines)


DEFINITION = re.compile(r"^(\s*)(?:async\s+)?(?:def|class)\s+(\w+)")


def stub_message(module: Module, qualname: str) -> str:
    """What a stub raises. It is met from later modules too (every analysis cell profiles with module 01's
    ``Profile``), so it names the function, its module, and what to do; it starts with the mark that
    ``tinytorch.check`` looks for."""
    where = f"{qualname} " if qualname else ""
    return (f"implement in module {module.slug}: {where}is still the skeleton's stub. Finish "
            f"{module.slug}.ipynb and run its last cell (the export), then restart this kernel")


def stub_solutions(code: str, module: Module) -> str:
    """The student's version: each solution region becomes a NotImplementedError naming the function and module."""
    lines, inside = [], False
    enclosing: list[tuple[int, str]] = []  # (indent, name) of the def/class lines around this line
    for line in code.splitlines():
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            indent = line[: len(line) - len(line.lstrip())]
            qualname = ".".join(name for depth, name in enclosing if depth < len(indent))
            lines.append(f"{indent}raise NotImplementedError({stub_message(module, qualname)!r})")
            inside = True
        elif marker == END_SOLUTION:
            inside = False
        elif not inside:
            lines.append(line)
            definition = DEFINITION.match(line)
            if marker and not marker.startswith(("#", "@", ")")):
                depth = len(line) - len(line.lstrip())
                if definition or depth == 0:
                    enclosing = [(d, n) for d, n in enclosing if d < depth]
                if definition:
                    enclosing.append((depth, definition.group(2)))
    return "\n".join(lines)


def lines_between(text: str, begin: str, end: str) -> list[str]:
    """The stripped, non-empty lines between each ``begin`` and ``end`` marker line."""
    found, inside = [], False
    for line in text.splitlines():
        marker = line.strip()
        if marker in (begin, end):
            inside = marker == begin
        elif inside and marker:
            found.append(marker)
    return found


def solution_lines(code: str) -> list[str]:
    """The stripped lines inside solution regions."""
    return lines_between(code, BEGIN_SOLUTION, END_SOLUTION)


def mark_scheme_lines(text: str) -> list[str]:
    return lines_between(text, *MARK_SCHEME)


@dataclass(frozen=True)
class ModuleSize:
    """How much a module asks of a student: what the course build's ``lines`` command prints."""
    module: Module
    exercises: int       # solution regions (each a stub in the release)
    solution_lines: int  # code lines inside them, blank and comment-only lines not counted
    questions: int       # written answers (markdown cells graded by hand)

    @property
    def hours(self) -> float:
        """A rough time estimate: 20 tested solution lines an hour (reading, writing, debugging against the
        tests), a quarter of an hour per written answer, half an hour for the prose and analysis cells."""
        return self.solution_lines / 20 + 0.25 * self.questions + 0.5


def is_question_cell(cell: Mapping[str, Any]) -> bool:
    """A written answer: a markdown cell that nbgrader grades by hand."""
    return cell.get("cell_type") == "markdown" and bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def module_size(module: Module) -> ModuleSize:
    nb = read_notebook(module)
    code = [cell_source(c) for c in nb.cells if c.cell_type == "code"]
    regions = sum(line.strip() == BEGIN_SOLUTION for text in code for line in text.splitlines())
    lines = [line for text in code for line in solution_lines(text) if not line.startswith("#")]
    return ModuleSize(module, regions, len(lines), sum(is_question_cell(c) for c in nb.cells))
