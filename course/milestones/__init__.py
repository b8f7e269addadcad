"""Course milestones: end-to-end programs built only from tinytorch, run as `python -m course.milestones.<name>`.

The milestones use the CPUs the server's quota gives the way `import tinytorch` sets them up
(tinytorch/threads.py): NumPy's BLAS on one thread (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set by
hand win), and training on one data-parallel worker per CPU of the quota (module 12's
DataParallel; MNIST CNN and TinyGPT). Not a constant: OpenBLAS's own default, one thread per core
of the host, starts dozens of threads that queue for a quota of two; and BLAS threads speed up the
matrix products alone, where a worker per CPU runs everything between them in parallel too.
"""
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from tinytorch.threads import use_default_threads

use_default_threads()  # importing tinytorch.threads already did (tinytorch/__init__.py): said here to be seen


def run(main: Callable[[], int], name: str) -> int:
    """Run milestone ``name``'s ``main()`` on the student's tinytorch. Before it starts: when a module it needs
    is not exported yet, name the first such module, not a traceback. After it: record the result for
    ``python -m tinytorch.status``."""
    from tinytorch.status import MILESTONES, first_missing, record_milestone
    milestone = next(m for m in MILESTONES if m.name == name)
    missing = first_missing(milestone)
    if missing is not None:
        print(f"The {milestone.title} milestone runs your modules 02 to {milestone.last_module}; module "
              f"{missing.slug} is not exported yet (implement in module {missing.slug}).\n"
              f"Finish {missing.slug}.ipynb and run its last cell (or: python -m tinytorch.export "
              f"{missing.slug}.ipynb), then run the milestone again. python -m tinytorch.status shows every "
              "module's state.", file=sys.stderr)
        return 2
    try:
        code = main()
    except NotImplementedError as error:
        print(f"This milestone reached code you have not written yet: {unfinished(error)}\n"
              "Finish it in that module's notebook and run its last cell (or: python -m tinytorch.export "
              "NN_name.ipynb), then run the milestone again.", file=sys.stderr)
        return 2
    record_milestone(name, code == 0)
    return code


def show_plot(path: str | Path) -> bool:
    """Display the saved PNG ``path`` in the notebook running this milestone (``%run -m course.milestones.xor``
    or calling its ``main``); True when it did. From a terminal there is nothing to display on (the path is
    printed): False, and IPython is not even imported."""
    if "IPython" not in sys.modules:                  # a kernel imports IPython before it runs any cell
        return False
    from IPython import get_ipython
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:   # plain python, or IPython in a terminal
        return False
    from IPython.display import Image, display
    display(Image(filename=str(path)))
    return True


def unfinished(error: NotImplementedError) -> str:
    """Where a NotImplementedError came from: the innermost frame in a tinytorch module, named by its course module."""
    from tinytorch.check import course_modules
    by_target = {m.target: m for m in course_modules().values()}
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        module = by_target.get(Path(frame.filename).stem)
        if module is not None:
            return f"{frame.name} in {frame.filename} (module {module.slug}) raises NotImplementedError {error}".strip()
    return f"NotImplementedError {error}".strip()
