"""Export your notebook's code into *your* tinytorch: ``python -m tinytorch.export 02_tensor.ipynb``.

The ``tinytorch`` in the student image is the skeleton: every function you
write raises ``NotImplementedError("implement in module NN_name: <function> is
still the skeleton's stub ...")``.  Exporting a notebook copies its ``#| export``
cells, in order, into one file of your
*overlay*, ``$TINYTORCH_OVERLAY/<target>.py`` (default ``~/.tinytorch/overlay``),
where ``<target>`` comes from the notebook's ``#| default_exp <target>`` line.
The skeleton's ``tinytorch/__init__.py`` puts the overlay first on the
package's search path, so from then on ``import tinytorch`` (in a new kernel,
a later module's notebook, ``python -m tinytorch.check NN``, the milestones)
uses your module instead of its stub.  Modules you have not exported stay stubs.

An exercise still holding nbgrader's ``raise NotImplementedError()`` is exported
with a message naming it and the notebook to finish (a later module may reach it).
The export refuses, and keeps your previous export, when the new code does not
compile or does not import; it reads the notebook as last *saved*.  To go back
to the stub, delete the file it names.  Under nbgrader (Validate, autograde)
the export does nothing: grading never writes into anyone's tinytorch.

This file uses only the standard library, and never imports the rest of
tinytorch, so it works even when an exported module is broken.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXPORT = "#| export"
DEFAULT_EXP = "#| default_exp "
OVERLAY_ENV = "TINYTORCH_OVERLAY"           # where a student's exports go, when set
DEFAULT_OVERLAY = "~/.tinytorch/overlay"     # ... and when not
HEADER = ("# Exported by `tinytorch.export` from {notebook}: your own code.\n"
          "# Edit the notebook and export again; delete this file to go back to the stub.\n")


class ExportError(Exception):
    """The notebook cannot be exported; the message says why and what to do."""


def overlay_path() -> Path:
    """Where exported modules go: ``$TINYTORCH_OVERLAY``, else ``~/.tinytorch/overlay``."""
    return Path(os.environ.get(OVERLAY_ENV) or DEFAULT_OVERLAY).expanduser()


def cell_source(cell: dict) -> str:
    """A cell's source as one string (a notebook file may store it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def is_export_cell(cell: dict) -> bool:
    """A code cell whose first line is ``#| export``: its code goes into the package."""
    return cell.get("cell_type") == "code" and cell_source(cell).split("\n", 1)[0].strip() == EXPORT


def notebook_code(notebook: Path) -> tuple[str, str]:
    """(target, code): the notebook's export cells joined in order, and where they go."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except FileNotFoundError:
        raise ExportError(f"{notebook} does not exist (give the notebook's file name, e.g. 02_tensor.ipynb)") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ExportError(f"{notebook} is not a readable notebook ({error})") from None
    target, bodies = None, []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        for line in source.splitlines():
            if line.startswith(DEFAULT_EXP) and target is None:
                target = line[len(DEFAULT_EXP):].strip()
        if is_export_cell(cell):
            bodies.append(name_unfinished_stubs(source.partition("\n")[2].strip("\n"), notebook.name))
    if not target or not target.isidentifier():
        raise ExportError(f"{notebook} has no '{DEFAULT_EXP}<name>' cell: it is not a course module notebook")
    if not bodies:
        raise ExportError(f"{notebook} has no cell starting with '{EXPORT}': nothing to export")
    return target, "\n\n\n".join(bodies) + "\n"


YOUR_CODE_HERE = "# YOUR CODE HERE"                       # nbgrader's stub: this line, then the raise
NBGRADER_STUB = "raise NotImplementedError()"
DEFINITION = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)")


def name_unfinished_stubs(code: str, notebook: str) -> str:
    """An exercise exported before it is written keeps nbgrader's bare ``raise NotImplementedError()``: a later
    module that reaches it (every analysis cell uses module 01's profiler) would say nothing. Give that raise
    a message naming the function and the notebook to finish. Other raises are the student's and stay."""
    lines = code.split("\n")
    for i in range(1, len(lines)):
        if lines[i].strip() != NBGRADER_STUB or lines[i - 1].strip() != YOUR_CODE_HERE:
            continue
        indent = len(lines[i]) - len(lines[i].lstrip())
        function = next((found.group(2) for line in reversed(lines[:i])
                         if (found := DEFINITION.match(line)) and len(found.group(1)) < indent), "this exercise")
        message = (f"{function} is not written yet in your export of {notebook}: write it (YOUR CODE HERE), "
                   "save, run its last cell (the export) again, then restart this kernel")
        lines[i] = f"{lines[i][:indent]}raise NotImplementedError({message!r})"
    return "\n".join(lines)


CHECK = """
import importlib.util, os, sys
import tinytorch  # the skeleton imports every module, the overlay's first
overlay = os.environ["{env}"]
if overlay not in list(tinytorch.__path__):  # a tinytorch without the overlay hook (the reference)
    tinytorch.__path__.insert(0, overlay)
spec = importlib.util.spec_from_file_location("tinytorch.{target}", os.path.join(overlay, "{target}.py"))
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
"""


def _check_imports(overlay: Path, target: str) -> None:
    """Import tinytorch with this overlay, and the new module itself, in a fresh interpreter."""
    env = {**os.environ, OVERLAY_ENV: str(overlay)}
    code = CHECK.format(target=target, env=OVERLAY_ENV)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise ExportError("your code does not import, so the previous export was kept:\n  "
                          + "\n  ".join(lines[-6:]))


def export_notebook(notebook: str | Path, overlay: Path | None = None, check: bool = True) -> Path | None:
    """Write the notebook's export cells to ``<overlay>/<target>.py``; return that path.

    Returns None (and writes nothing) while nbgrader executes the notebook.
    """
    if os.environ.get("NBGRADER_EXECUTION"):
        print("tinytorch.export: skipped while nbgrader runs the notebook (grading never exports)")
        return None
    notebook = Path(notebook)
    overlay = Path(overlay) if overlay is not None else overlay_path()
    target, code = notebook_code(notebook)
    text = HEADER.format(notebook=notebook.name) + "\n" + code
    try:
        compile(text, f"{target}.py (from {notebook.name})", "exec")
    except SyntaxError as error:
        raise ExportError(f"{notebook.name}: your code has a syntax error, so the previous export was kept: "
                          f"{error.msg} in the exported code at line {error.lineno}: {(error.text or '').strip()}") from None
    overlay.mkdir(parents=True, exist_ok=True)
    if check:
        with tempfile.TemporaryDirectory(prefix="tinytorch-export-") as staging:
            for existing in overlay.glob("*.py"):
                shutil.copy2(existing, staging)
            Path(staging, f"{target}.py").write_text(text, encoding="utf-8")
            _check_imports(Path(staging), target)
    destination = overlay / f"{target}.py"
    partial = overlay / f".{target}.py.partial"
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, destination)  # atomic: a reader sees the old file or the new one
    for stale in (overlay / "__pycache__").glob(f"{target}.*.pyc"):
        stale.unlink()  # a same-second, same-size rewrite would otherwise reuse old bytecode
    importlib.invalidate_caches()  # the overlay folder may be new to this process
    print(f"exported {notebook.name} -> {destination}\n"
          f"  new kernels and `python -m tinytorch.check` now import your tinytorch.{target}")
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinytorch.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path, help="module notebooks, e.g. 02_tensor.ipynb")
    parser.add_argument("--no-check", action="store_true", help="skip the import check (faster; riskier)")
    args = parser.parse_args(argv)
    status = 0
    for notebook in args.notebooks:
        try:
            export_notebook(notebook, check=not args.no_check)
        except ExportError as error:
            print(f"export failed: {error}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
