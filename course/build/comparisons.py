"""The stored PyTorch comparisons: what each module's comparison cell printed when it ran with PyTorch.

The student image has no PyTorch (the CPU wheel would make it exceed its size budget), so there a module's
comparison cell (``torch = torch_if_installed("NN_name")``, then ``if torch is not None:``) prints these
figures instead, labelled as stored (``tinytorch.profiler.stored_comparison``). ``record`` makes them the
only way they are made: it executes the module's notebook, with its solutions, in a kernel where PyTorch is
installed, up to and including the comparison cell, and keeps what that cell printed, with the date, the
PyTorch and NumPy versions and the machine. Each entry keeps the SHA-256 of the cell's source: ``stale``
names every module whose cell changed since (or that has no entry), and ``python -m course.build check``
and a test fail on it.

The file is ``tinytorch/comparisons.json`` (``tinytorch.profiler.STORED_COMPARISONS`` beside the package's
``__init__``): the reference package and the student skeleton both carry it.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any

import nbformat

from course.build.sources import PACKAGE, ROOT, CourseError, Module, course_modules, read_notebook

STORED = PACKAGE / "comparisons.json"
CALL = "torch = torch_if_installed("

# Run in the same kernel after the comparison: what the stored figures say about where they come from.
ABOUT_THE_RUN = """import datetime as _dt, json as _json, os as _os, platform as _platform
import numpy as _np, torch as _torch
_cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
            _platform.processor() or "unknown CPU") if _os.path.exists("/proc/cpuinfo") else _platform.processor()
print(_json.dumps({"recorded": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"), "torch": _torch.__version__,
                   "numpy": _np.__version__, "machine": f"{_platform.system()} {_platform.machine()}, {_cpu}, "
                   f"{len(_os.sched_getaffinity(0))} CPUs, Python {_platform.python_version()}"}))"""


def comparison_cell(nb: nbformat.NotebookNode, module: Module) -> int:
    """The index of the module's one comparison cell: the code cell with ``torch = torch_if_installed(...)``."""
    found = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and any(line.startswith(CALL) for line in cell.source.splitlines())]
    if len(found) != 1:
        raise CourseError(f"{module.source}: {len(found)} cells call `{CALL}\"{module.slug}\")`; the PyTorch "
                          f"comparison is one cell (course/README.md)")
    return found[0]


def cell_hash(module: Module) -> str:
    nb = read_notebook(module)
    return hashlib.sha256(nb.cells[comparison_cell(nb, module)].source.encode()).hexdigest()


def load() -> dict[str, dict[str, str]]:
    """The stored comparisons, module slug -> entry; empty when there is no file yet."""
    if not STORED.exists():
        return {}
    stored: dict[str, dict[str, str]] = json.loads(STORED.read_text(encoding="utf-8"))
    return stored


def record_module(module: Module) -> dict[str, str]:
    """Execute ``module``'s notebook up to its comparison cell with PyTorch; its stored entry."""
    # only here: the skeleton's build (docker/build.sh, deploy/requirements.txt) runs notebooks never
    import nbclient

    nb = read_notebook(module)
    index = comparison_cell(nb, module)
    source = nb.cells[index].source
    nb.cells = nb.cells[: index + 1] + [nbformat.v4.new_code_cell(ABOUT_THE_RUN)]
    # the kernel imports this repository's tinytorch, whatever else is installed
    env_before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_before) if p)
    try:
        with tempfile.TemporaryDirectory() as folder:  # where the notebook may write (checkpoints, plots)
            nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                    resources={"metadata": {"path": folder}}).execute()
    except nbclient.exceptions.CellExecutionError as error:
        raise CourseError(f"{module.source}: the notebook failed before its comparison was recorded:\n{error}") from None
    finally:
        if env_before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = env_before

    def printed(cell: Any) -> str:
        return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")

    about = json.loads(printed(nb.cells[-1]))
    output = printed(nb.cells[index])
    if "PyTorch is not installed" in output or not output.strip():
        raise CourseError(f"{module.source}: its comparison printed nothing with PyTorch; install torch==2.13.0 "
                          f"in the kernel's Python and record again")
    return {"cell_sha256": hashlib.sha256(source.encode()).hexdigest(), "output": output, **about}


def record(slugs: list[str] | None = None) -> list[str]:
    """Record the comparisons of the modules named (``["02_tensor"]``, or ``["02"]``), or of all; write the file.
    Entries of other modules are kept; those of modules no longer in the course are dropped."""
    modules = course_modules()
    chosen = [m for m in modules if not slugs or m.slug in slugs or m.number in slugs]
    unknown = set(slugs or []) - {m.slug for m in modules} - {m.number for m in modules}
    if unknown:
        raise CourseError(f"no module {', '.join(sorted(unknown))} in the course")
    stored = {slug: entry for slug, entry in load().items() if slug in {m.slug for m in modules}}
    done = []
    for module in chosen:
        stored[module.slug] = record_module(module)
        STORED.write_text(json.dumps(stored, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        done.append(f"recorded {module.slug}: {len(stored[module.slug]['output'].splitlines())} lines "
                    f"with PyTorch {stored[module.slug]['torch']}")
    return done


def stale() -> list[str]:
    """Every module whose stored comparison is missing or was recorded from a different comparison cell."""
    stored, problems = load(), []
    for module in course_modules():
        entry = stored.get(module.slug)
        if entry is None:
            problems.append(f"{module.slug} has no stored PyTorch comparison in {STORED.relative_to(ROOT)}")
        elif entry["cell_sha256"] != cell_hash(module):
            problems.append(f"{module.slug}'s PyTorch comparison cell changed since its figures were recorded "
                            f"({entry['recorded']})")
    if problems:
        problems.append("record them with PyTorch installed: python -m course.build comparisons [NN ...]")
    return problems
