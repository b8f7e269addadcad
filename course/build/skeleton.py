"""The student's package: ``python -m course.build skeleton DIR`` writes ``DIR/tinytorch`` and ``DIR/course``.

Hand-written tinytorch files as they are, generated ones with every solution region replaced by
``NotImplementedError("implement in module NN_name: <function> is still the skeleton's stub. Finish
NN_name.ipynb and run its last cell ...")`` (later modules reach module 01's profiler too), and an ``__init__`` that looks in the
student's overlay first (where ``tinytorch.export`` writes their own modules), and the stored PyTorch
comparisons (``comparisons.json``: the notebooks show them where PyTorch is not installed). Beside it,
``course/milestones``: the milestone programs (they hold no solution), without the rest of ``course/``.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

from course.build.comparisons import STORED
from course.build.package import generate
from course.build.sources import MILESTONES, PACKAGE
from tinytorch.export import DEFAULT_OVERLAY, OVERLAY_ENV

OVERLAY_HOOK = f"""
# The student's own modules come first (added by `python -m course.build skeleton`): a notebook's
# export cell (tinytorch.export) writes its code to ${OVERLAY_ENV} (default {DEFAULT_OVERLAY}),
# and `import tinytorch.<name>` finds it there before the stub in this package.
# Same rule as tinytorch.export.overlay_path(), written out: importing tinytorch.export here would
# make `python -m tinytorch.export` run a module that is already imported.
import os as _os  # noqa: E402

__path__.insert(0, _os.path.expanduser(_os.environ.get("{OVERLAY_ENV}") or "{DEFAULT_OVERLAY}"))  # noqa: F821
del _os

"""

STUDENT_COURSE_INIT = '''"""The course's milestones, run on your own tinytorch: python -m course.milestones.xor (also
mnist_cnn, tinygpt). They use the modules you have exported; one you have not is named."""
'''


def with_overlay_hook(init_source: str) -> str:
    """The skeleton's ``__init__.py``: the reference one with the overlay hook right after its docstring."""
    tree = ast.parse(init_source)
    has_docstring = ast.get_docstring(tree, clean=False) is not None
    lines = init_source.splitlines(keepends=True)
    cut = (tree.body[0].end_lineno or 0) if has_docstring else 0
    return "".join(lines[:cut]) + OVERLAY_HOOK + "".join(lines[cut:])


def write_skeleton(out_dir: Path) -> Path:
    """Write ``out_dir/tinytorch`` (the skeleton) and ``out_dir/course/milestones``; return the package."""
    package, milestones = out_dir / "tinytorch", out_dir / "course" / "milestones"
    for old in (package, milestones.parent):
        if old.exists():
            shutil.rmtree(old)
    milestones.mkdir(parents=True)
    (milestones.parent / "__init__.py").write_text(STUDENT_COURSE_INIT)
    for source in sorted(MILESTONES.glob("*.py")):
        shutil.copyfile(source, milestones / source.name)
    generated = generate(student=True)
    for source in sorted(PACKAGE.rglob("*.py")):
        target = package / source.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = generated.get(source, source.read_text())
        if source == PACKAGE / "__init__.py":
            text = with_overlay_hook(text)
        target.write_text(text)
    if STORED.exists():  # a missing file is `python -m course.build check`'s to report
        shutil.copyfile(STORED, package / STORED.name)
    return package
