"""How tinytorch uses the CPUs it may use: one BLAS thread, and one data-parallel worker per CPU of the quota.

NumPy's BLAS (OpenBLAS) starts one thread per core it *sees*, and a container sees every core of its
host: on a 64-core server whose JupyterHub gives each student 2 CPUs, OpenBLAS would start 64 threads
that take turns on 2 CPUs' worth of time, and every matrix product would wait for all of them. The
quota the container really has is in its cgroup (``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us`` in v1): 200000 of every 100000 microseconds is 2 CPUs.

Why BLAS gets one thread whatever the quota: BLAS threads speed up the matrix products only, and
everything between two products runs on the Python thread alone. Training uses the CPUs instead by
data parallelism (module 12's ``DataParallel``): ``default_workers()`` threads, one per CPU of the
quota, each running forward and backward on its slice of the batch, products and element-wise work
alike. On a 2-core Xeon (3 December 2026) a TinyGPT training step took 100-120 ms with two BLAS
threads and 73-77 ms with two workers of one BLAS thread each (medians of two runs); two workers that each call a
two-thread BLAS took 144-157 ms, so the two are not combined.

`import tinytorch` calls `use_default_threads()` before NumPy is imported, because BLAS reads its
thread count once, when it is loaded. A thread count set by hand (OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS, MKL_NUM_THREADS) always wins: this only fills in the ones that are not set.

This file uses only the standard library: it runs before NumPy is imported.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """CPUs' worth of time this container may use (2.0 for ``200000 100000``), or None when unlimited."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]           # cgroup v2: "max 100000" = none
    except (OSError, ValueError):
        try:                                                                   # cgroup v1: quota -1 = none
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    if quota in ("max", "-1") or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None
    return int(quota) / int(period)


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), else every core."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(cgroup: Path = CGROUP) -> int:
    """The CPUs we may use: the quota rounded down, at most the usable cores, at least 1."""
    quota = cpu_quota(cgroup)
    cores = usable_cores()
    return max(1, cores if quota is None else min(cores, math.floor(quota)))


BLAS_THREADS = 1  # per worker (above)


def use_default_threads() -> int:
    """Set each unset BLAS thread variable to BLAS_THREADS; return what OPENBLAS_NUM_THREADS now says."""
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, str(BLAS_THREADS))
    try:
        return int(os.environ["OPENBLAS_NUM_THREADS"])
    except ValueError:
        return BLAS_THREADS
