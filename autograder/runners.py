"""Where each submission's grading container runs: the one switch between this host and the cluster.

When the Docker engine ``autograder grade`` talks to (``DOCKER_HOST``, else this host's) is the manager of a
Docker Swarm, each submission is a Swarm job on the [graders] nodes (autograder/swarm_jobs.py); otherwise a
hardened ``docker run`` here (autograder/containers.py). The deploy forms the swarm from the inventory (its
[nodes] group), so the inventory switches it on; nothing else does.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autograder import containers, swarm_jobs


@dataclass
class Runner:
    where: str                                                # for the TA: where the containers run
    grade: Callable[[containers.Job, Path | None], dict]      # one job -> its result (status "graded" or "error")
    kill_running: Callable[[], None]                          # stop every container of this process
    slots: int                                                # containers that fit at once


def runner_for(image: str, limits: containers.Limits) -> Runner:
    """The runner of this classroom, checked usable (ContainerError says what to do)."""
    if swarm_jobs.is_swarm_manager():
        nodes = swarm_jobs.preflight(image)
        names = ", ".join(sorted(n["Description"]["Hostname"] for n in nodes))
        return Runner(f"Swarm jobs on the grader nodes {names}", swarm_jobs.grade_as_job, swarm_jobs.kill_running,
                      swarm_jobs.slots(nodes, limits))
    containers.preflight(image)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    fits = max(1, memory // (limits.memory_mb * 2**20) - 1)
    return Runner("hardened containers on this host", containers.grade_in_container, containers.kill_running,
                  min(os.cpu_count() or 1, fits))
