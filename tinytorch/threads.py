"""How many BLAS threads tinytorch uses by default: one fewer than the container's CPU quota, at least one.

NumPy's BLAS (OpenBLAS) starts one thread per core it *sees*, and a container sees every core of its
host: on a 64-core server whose JupyterHub gives each student 2 CPUs, OpenBLAS would start 64 threads
that take turns on 2 CPUs' worth of time, and every matrix product would wait for all of them. The
quota the container really has is in its cgroup (``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us`` in v1): 200000 of every 100000 microseconds is 2 CPUs.

Why one fewer: tinytorch's matrices are small, everything between two matrix products runs on the
Python thread alone, and a BLAS thread that has to wait for a busy CPU holds up every product. On
our 2-core machine, busy with other work, a TinyGPT training step took 105-160 ms with one BLAS
thread and 380-510 ms with two; quiet, two threads saved at best a fifth. So the quota, minus one
CPU for the Python thread's own work and the rest of the server (Jupyter, the other processes),
and never more than the cores this process may run on; without a quota, the usable cores minus one.

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


def default_threads(cgroup: Path = CGROUP) -> int:
    """The CPUs we may use (the quota rounded down, at most the usable cores) minus one, at least 1."""
    quota = cpu_quota(cgroup)
    cores = usable_cores()
    cpus = cores if quota is None else min(cores, math.floor(quota))
    return max(1, cpus - 1)


def use_default_threads() -> int:
    """Set each unset BLAS thread variable to `default_threads()`; return what OPENBLAS_NUM_THREADS now says."""
    threads = default_threads()
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, str(threads))
    try:
        return int(os.environ["OPENBLAS_NUM_THREADS"])
    except ValueError:
        return threads
