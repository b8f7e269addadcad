"""Course milestones: end-to-end programs built only from tinytorch, run as `python -m course.milestones.<name>`.

The milestones default to one BLAS thread (set here, before NumPy is imported; an explicit
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS wins). Their matrices are small (at most a few hundred
rows and columns), where a second thread saves little on a quiet machine and, on a shared one,
spins against the other processes: measured on our 2-core machines while they were busy, one
TinyGPT training step took 95-128 ms with one thread and 340-357 ms with two.
"""
import os
import sys
from collections.abc import Callable

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


def run(main: Callable[[], int]) -> int:
    """Run a milestone's ``main()``: where it reaches a stub the student has not exported yet, say which
    module to finish, not a traceback."""
    try:
        return main()
    except NotImplementedError as error:
        print(f"This milestone uses tinytorch code you have not exported yet ({error}).\n"
              "Finish that module's notebook and run its last cell (or: python -m tinytorch.export "
              "NN_name.ipynb), then run the milestone again.", file=sys.stderr)
        return 2
