"""Grade one submission in one hardened container: the host's side of autograder/ttgrade (``docker run``).

``grade_in_container(job)`` stages the submission's notebooks in a folder of their own (mounted
read-only), starts the grader image with every limit below, writes the *bundle* (hidden tests,
reference and skeleton sources, limits, datasets) to the container's stdin, and reads the one result
line its grader process prints.  Nothing the submission prints or writes can reach that line: the
grader process is the container's pid 1, non-dumpable, and the student's code runs in child processes
whose output goes to /dev/null.  No host folder is writable from inside the container.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.bundle import bundle
from autograder.ttgrade.protocol import RESULT_PREFIX, SUBMISSION, ProbeLimits

DEFAULT_IMAGE = "tinytorch/grader:latest"
BATCH_LABEL = "org.tinytorch.grading-batch"  # every grading container carries its batch: one run, one value
PROCESS_BATCH = f"process-{os.getpid()}-{secrets.token_hex(4)}"  # the batch of a Job that names none
REFERENCE_MASK = "/opt/tinytorch-reference"  # the image keeps the reference there; grading hides it


@dataclass
class Limits:
    """What one grading container may use (see README "Hardening")."""
    memory_mb: int = 2048         # the container's memory (and swap) limit
    pids: int = 128               # processes and threads in the container
    cpus: float = 1.0             # CPU quota
    tmpfs_mb: int = 256           # the only writable place, /tmp (counts toward memory)
    probe_timeout: float = 20.0   # seconds one probe may run unless its test says otherwise
    probe_memory_mb: int = 1536   # the student's process: its address space is capped near this
    probe_budget: float = 120.0   # seconds all of a submission's probes may take together (a milestone's own
    #                               long timeout is apart): sleeping just under probe_timeout in every probe ends here
    wall_seconds: float = 900.0   # the whole container, after which it is killed

    def for_bundle(self) -> ProbeLimits:
        return {"probe_timeout": self.probe_timeout, "probe_memory_mb": self.probe_memory_mb,
                "probe_budget": self.probe_budget}


@dataclass
class Job:
    assignment: str                       # "02_tensor"
    notebooks: dict[str, Path]            # slug -> the student's notebook for that module (this one, and earlier ones)
    label: str = ""                       # who, for messages
    limits: Limits = field(default_factory=Limits)
    image: str = DEFAULT_IMAGE
    batch: str = PROCESS_BATCH            # the grading run it belongs to (a container label: see BATCH_LABEL)


RUNNING: set[str] = set()  # names of the grading containers running now (killed if the TA interrupts)


class ContainerError(Exception):
    """Docker or the grader image is not usable; the message says what to do."""


def preflight(image: str) -> None:
    """Fail early, with what to do, when dockerd is not running or the grader image is missing."""
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ContainerError("the docker command is missing: apt-get install -y docker.io") from None
    if info.returncode != 0:
        raise ContainerError("the Docker daemon does not answer: start it (`dockerd &` where there is no systemd)")
    found = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, timeout=60)
    if found.returncode != 0:
        raise ContainerError(f"the grader image {image} does not exist here: build it with `bash docker/build.sh build grader`")


def kill_running() -> None:
    for name in list(RUNNING):
        subprocess.run(["docker", "kill", name], capture_output=True, timeout=60)


def docker_command(name: str, image: str, staging: Path, limits: Limits, batch: str = PROCESS_BATCH) -> list[str]:
    """The ``docker run`` of one grading container: every hardening flag is here, in one place."""
    return [
        "docker", "run", "--rm", "-i", "--name", name,
        "--label", f"{BATCH_LABEL}={batch}",                   # whose it is: tests and clean-up touch only theirs
        "--network", "none",                                   # no network at all
        "--memory", f"{limits.memory_mb}m", "--memory-swap", f"{limits.memory_mb}m",  # no swap either
        "--pids-limit", str(limits.pids),                      # fork bombs stop here
        "--cpus", str(limits.cpus),                            # CPU quota
        "--read-only",                                         # read-only root file system
        "--tmpfs", f"/tmp:rw,nosuid,nodev,size={limits.tmpfs_mb}m",
        "--tmpfs", f"{REFERENCE_MASK}:ro,nosuid,nodev,size=64k",  # hide the image's copy of the reference
        "--user", "1000:100",                                  # non-root
        "--cap-drop", "ALL",                                   # no capabilities
        "--security-opt", "no-new-privileges",                 # no setuid escalation
        "--ulimit", "core=0",
        "--log-driver", "none",                                # nothing is kept by docker
        "--env", "PYTHONPATH=",
        "--mount", f"type=bind,source={staging},target={SUBMISSION},readonly",  # only this submission
        image, "python", "-I", "-m", "ttgrade.parent",
    ]


def stage(job: Job, root: Path) -> Path:
    """Copy the job's notebooks, named ``<slug>.ipynb``, into a fresh folder the container may read."""
    staging = Path(tempfile.mkdtemp(prefix="ttgrade-", dir=root))
    for slug, path in job.notebooks.items():
        if path is not None and Path(path).is_file():
            shutil.copyfile(path, staging / f"{slug}.ipynb")
            os.chmod(staging / f"{slug}.ipynb", 0o444)
    os.chmod(staging, 0o555)
    return staging


def grade_in_container(job: Job, work_root: Path | None = None) -> dict:
    """Grade one job; return the grader's result (``status`` "graded") or a grading error (``status`` "error")."""
    nonce = secrets.token_hex(16)
    request = bundle(job.assignment, job.limits.for_bundle(), nonce)
    root = Path(work_root or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    staging = stage(job, root)
    name = f"ttgrade-{job.assignment}-{nonce[:12]}"
    started = time.monotonic()
    RUNNING.add(name)
    try:
        try:
            done = subprocess.run(docker_command(name, job.image, staging, job.limits, job.batch), input=request,
                                  capture_output=True, timeout=job.limits.wall_seconds)
        except subprocess.TimeoutExpired:
            subprocess.run(["docker", "kill", name], capture_output=True)
            return {"status": "error", "message": f"the grading container did not finish within "
                                                  f"{job.limits.wall_seconds:g} s and was killed"}
    finally:
        RUNNING.discard(name)
        os.chmod(staging, 0o755)
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.monotonic() - started
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    last = lines[-1] if lines else ""  # the grader process's last words: it writes nothing after its result
    if done.returncode == 0 and last.startswith(RESULT_PREFIX + nonce + " "):
        result = json.loads(last[len(RESULT_PREFIX) + len(nonce) + 1:])
        result["container_seconds"] = round(seconds, 3)
        return result
    error = done.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
    return {"status": "error", "container_seconds": round(seconds, 3),
            "message": f"the grading container exited with status {done.returncode} without a result"
                       + (": " + " | ".join(error) if error else "")}
