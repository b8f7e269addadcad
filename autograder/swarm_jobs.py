"""Grade one submission as a Swarm job on the [graders] nodes: the cluster's twin of autograder/containers.py.

``grade_as_job(job)`` gives the submission to a one-task service (one replica, never restarted) constrained to
the nodes labelled ``tinytorch.graders=true`` (the deploy's swarm role labels the inventory's [graders]), waits
for it, reads the grader process's result line from the service's log, and removes the service and its secrets.

What the single-host ``docker run`` sets, and how a job gets it (``service_command`` has every flag):
memory, CPU and pids limits, the read-only root, an in-memory /tmp, the reference masked, core=0 and the
wall-clock kill (the service removed) are Swarm's own flags. What Swarm cannot say on Docker 20.10, the grader
process does itself before the submission's code runs (autograder/ttgrade/parent.py, ``take_delivery``):
- no stdin: the bundle and the notebooks come as secrets (gzipped, cut at Docker's 500 KB per secret), root's
  with mode 0400, so the job starts as root with only CAP_SETUID, CAP_SETGID and CAP_NET_ADMIN, reads them,
  then becomes uid 1000 with no capabilities, no_new_privs and non-dumpable: nothing it starts can read them;
- no ``--network none`` for a service (moby #42204): the grader process deletes every interface but lo;
- no no-new-privileges option: the grader process sets no_new_privs itself (inherited by everything after);
- no ``--memory-swap``: a job may swap as much as its memory where the node has swap (grader nodes should not);
- the datasets (public, up to 15 MB) are the node's own copy, bound read-only at the host's path, checked
  against the digests in the bundle; never the course directory.
A job whose node goes down, or whose task Swarm itself withdraws before it ran (``WITHDRAWN``), is given again
to the swarm (``ATTEMPTS``), with a new nonce and secrets.
"""
from __future__ import annotations

import base64
import gzip
import json
import secrets
import subprocess
import time
from pathlib import Path

from autograder import hidden
from autograder.bundle import datasets_root, message
from autograder.containers import BATCH_LABEL, REFERENCE_MASK, ContainerError, Job, Limits
from autograder.ttgrade.protocol import BUNDLE_SECRET, DATASETS, RESULT_PREFIX, SECRET_BYTES, SUBMISSION, Delivery

GRADERS_LABEL = "tinytorch.graders"  # the label the swarm role gives the inventory's [graders] (roles/swarm/vars)
POLL_SECONDS = 1.0
ATTEMPTS = 3          # a job is given to the swarm again when its node went down, at most this often
# What Swarm says of a task it took back from its node without running it to the end (the node stopped meeting
# the job's constraints or reservations, as when it comes back from being down): nothing about the submission.
WITHDRAWN = ("assigned node no longer meets constraints",)
RUNNING: set[str] = set()  # names of the jobs (services) running now (removed if the TA interrupts)


def docker(*args: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout)


def is_swarm_manager() -> bool:
    """True when the Docker engine this process talks to (DOCKER_HOST, else this host's) manages a swarm."""
    try:
        done = docker("info", "--format", "{{json .Swarm}}", timeout=60)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    if done.returncode != 0:
        return False
    swarm = json.loads(done.stdout or b"{}")
    return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))


def grader_nodes() -> list[dict]:
    """The swarm's ready, active nodes labelled as graders, as ``docker node inspect`` gives them."""
    ids = docker("node", "ls", "-q", "--filter", f"node.label={GRADERS_LABEL}=true").stdout.decode().split()
    nodes = json.loads(docker("node", "inspect", *ids).stdout) if ids else []
    return [n for n in nodes if n["Status"]["State"] == "ready" and n["Spec"]["Availability"] == "active"]


def preflight(image: str) -> list[dict]:
    """The grader nodes, or ContainerError saying what to do when there is none."""
    nodes = grader_nodes()
    if not nodes:
        raise ContainerError(f"this host manages a Docker Swarm, but no ready, active node is labelled {GRADERS_LABEL}="
                             "true: put hosts under [graders] in inventory.ini and deploy, or bring them back "
                             "(docker node ls)")
    return nodes


def slots(nodes: list[dict], limits: Limits) -> int:
    """Jobs that fit on the grader nodes at once (each reserves its CPU and memory limit)."""
    def fits(node: dict) -> int:
        resources = node["Description"]["Resources"]
        return int(min(resources["NanoCPUs"] / 1e9 // limits.cpus, resources["MemoryBytes"] // (limits.memory_mb * 2**20)))
    return max(1, sum(fits(n) for n in nodes))


def delivery(job: Job, nonce: str) -> bytes:
    """What the job's secrets hold: the bundle (datasets as digests) and the notebooks, gzipped."""
    package: Delivery = {
        "bundle": message(job.assignment, job.limits.for_bundle(), nonce, datasets_on_node=True),
        "submission": {f"{slug}.ipynb": base64.b64encode(Path(path).read_bytes()).decode("ascii")
                       for slug, path in job.notebooks.items() if path is not None and Path(path).is_file()}}
    return gzip.compress(json.dumps(package).encode(), 6)


def service_command(name: str, job: Job, parts: list[str], node: str = "") -> list[str]:
    """The ``docker service create`` of one job: every hardening flag Swarm can express is here, in one place."""
    limits = job.limits
    command = [
        "docker", "service", "create", "--detach", "--quiet", "--name", name,
        # One task; a failed job is reported, not retried. Not "--mode replicated-job": Swarm keeps a removed job's
        # task in its store and its container on the node (moby #42789, #44312), one per submission, for good.
        "--replicas", "1", "--restart-condition", "none",
        "--no-resolve-image",                                  # the node's own build: no registry
        "--label", f"{BATCH_LABEL}={job.batch}", "--container-label", f"{BATCH_LABEL}={job.batch}",
        "--constraint", f"node.labels.{GRADERS_LABEL}==true",  # on the [graders] only
        "--limit-memory", f"{limits.memory_mb}M", "--reserve-memory", f"{limits.memory_mb}M",  # placed where it fits
        "--limit-cpu", str(limits.cpus), "--reserve-cpu", str(limits.cpus),
        "--limit-pids", str(limits.pids),                      # fork bombs stop here
        "--read-only",                                         # read-only root file system
        "--mount", f"type=tmpfs,target=/tmp,tmpfs-size={limits.tmpfs_mb * 2**20}",
        "--mount", f"type=tmpfs,target={REFERENCE_MASK},readonly,tmpfs-size=65536",  # hide the image's reference
        "--mount", f"type=tmpfs,target={SUBMISSION},tmpfs-size={64 * 2**20},tmpfs-mode=0755",  # root writes, then 0555
        "--user", "0:0",                                       # root only until the bundle is read: see parent.py
        "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_NET_ADMIN",
        "--ulimit", "core=0",
        "--log-driver", "json-file", "--log-opt", "max-size=16m", "--log-opt", "max-file=1",  # the result line
        "--stop-grace-period", "1s",                           # pid 1 ignores SIGTERM: removal kills at once
        "--env", "PYTHONPATH=",
    ]
    if node:  # one grader node only (the benchmark's one-node figure)
        command += ["--constraint", f"node.hostname=={node}"]
    if hidden.datasets(job.assignment):
        command += ["--mount", f"type=bind,source={datasets_root()},target={DATASETS},readonly"]
    for i, part in enumerate(parts):
        command += ["--secret", f"source={part},target={BUNDLE_SECRET}.{i:03d},uid=0,gid=0,mode=0400"]
    return command + [job.image, "python", "-I", "-m", "ttgrade.parent", "--from-secrets"]


def remove(name: str, parts: list[str]) -> None:
    """The service (which kills its task) and its secrets; a secret goes once the service has."""
    docker("service", "rm", name)
    for part in parts:
        for _ in range(20):
            if docker("secret", "rm", part).returncode == 0 or docker("secret", "inspect", part).returncode != 0:
                break
            time.sleep(0.5)


def kill_running() -> None:
    for name in list(RUNNING):
        parts = docker("secret", "ls", "-q", "--filter", f"name={name}.").stdout.decode().split()
        remove(name, parts)


def latest_task(name: str) -> dict | None:
    """The service's newest task: state, node, error, exit code."""
    ids = docker("service", "ps", "-q", "--no-trunc", name).stdout.decode().split()
    if not ids:
        return None
    tasks = json.loads(docker("inspect", "--type", "task", *ids).stdout or b"[]")
    return max(tasks, key=lambda t: t["Version"]["Index"], default=None) if tasks else None


def node_down(node_id: str) -> bool:
    done = docker("node", "inspect", "--format", "{{.Status.State}}", node_id)
    return done.returncode != 0 or done.stdout.decode().strip() != "ready"


def grade_as_job(job: Job, work_root: Path | None = None, node: str = "") -> dict:
    """Grade one job on the swarm (on the grader node named ``node`` only, if given); the grader's result
    (``status`` "graded") or a grading error (``status`` "error"), as ``containers.grade_in_container`` returns
    them, with the id of the node it ran on (``node``)."""
    for attempt in range(1, ATTEMPTS + 1):
        result = run_once(job, node)
        if result.get("status") != "node down":
            return result | {"attempts": attempt}
    return {"status": "error", "message": f"the grader nodes went down (or Swarm took the job back from them) under "
                                          f"this job {ATTEMPTS} times"}


def run_once(job: Job, only_node: str = "") -> dict:
    nonce = secrets.token_hex(16)
    name = f"ttgrade-{job.assignment}-{nonce[:12]}".replace("_", "-")
    packed = delivery(job, nonce)
    parts = [f"{name}.{i:03d}" for i in range(0, max(1, -(-len(packed) // SECRET_BYTES)))]
    started = time.monotonic()
    RUNNING.add(name)
    try:
        for i, part in enumerate(parts):
            made = docker("secret", "create", "--label", f"{BATCH_LABEL}={job.batch}", part, "-",
                          input=packed[i * SECRET_BYTES:(i + 1) * SECRET_BYTES])
            if made.returncode != 0:
                raise ContainerError(f"creating the job's secret failed: {made.stderr.decode().strip()}")
        made = docker(*service_command(name, job, parts, only_node)[1:])
        if made.returncode != 0:
            raise ContainerError(f"creating the job failed: {made.stderr.decode().strip()}")
        task, checked = None, 0.0
        while time.monotonic() - started < job.limits.wall_seconds:
            time.sleep(POLL_SECONDS)
            task = latest_task(name)
            state = task["Status"]["State"] if task else "new"
            if state in ("complete", "failed", "rejected", "orphaned", "shutdown", "remove"):
                break
            if task and task.get("NodeID") and time.monotonic() - checked > 5:  # a node that died: give it again
                checked = time.monotonic()
                if node_down(task["NodeID"]):
                    return {"status": "node down"}
        else:
            return {"status": "error", "message": f"the grading job did not finish within "
                                                  f"{job.limits.wall_seconds:g} s and was removed"}
        seconds = time.monotonic() - started
        node = (task or {}).get("NodeID", "")
        if state != "complete" and node and (node_down(node) or (task or {}).get("Status", {}).get("Err") in WITHDRAWN):
            return {"status": "node down"}
        logs = docker("service", "logs", "--raw", name, timeout=300)
        lines = logs.stdout.decode("utf-8", "replace").splitlines()
        last = lines[-1] if lines else ""  # the grader process's last words: it writes nothing after its result
        if state == "complete" and last.startswith(RESULT_PREFIX + nonce + " "):
            result = json.loads(last[len(RESULT_PREFIX) + len(nonce) + 1:])
            result.update(container_seconds=round(seconds, 3), node=node)
            return result
        error = logs.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        why = (task or {}).get("Status", {}).get("Err") or state
        return {"status": "error", "container_seconds": round(seconds, 3), "node": node,
                "message": f"the grading job ended ({why}) without a result" + (": " + " | ".join(error) if error else "")}
    finally:
        RUNNING.discard(name)
        remove(name, parts)
