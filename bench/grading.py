"""Grading throughput: N submissions of one module graded in hardened containers, as `autograder grade` runs them.

    python -m bench.grading [--module 02_tensor] [--submissions 100] [--jobs CORES] [--image tinytorch/grader:latest]
    DOCKER_HOST=<manager> python -m bench.grading --cluster [--one-node] --module 11_adam --submissions 40

--cluster: the same submissions as Swarm jobs on the grader nodes of the swarm that DOCKER_HOST manages
(autograder/swarm_jobs.py), as many at once as fit there (--one-node: on the first grader node only); it
writes results/grading-cluster-<N>-nodes.json and .md, with how many jobs each node ran.

Writes results/grading.json and results/grading.md: total minutes, submissions per minute, and the
per-container overhead, measured two ways:
  * overhead per submission = the container's wall time (docker run, start to exit, bundle sent on
    stdin) minus the time the grader process inside reports for loading and running the tests;
  * an empty container with the same hardening flags (`python -c pass`), started and removed.
Goal (issue 19): 100 submissions of one module on 2 cores in <= 4 minutes, <= 3 s overhead each.
The submissions are the module's reference notebook (and the earlier modules' for a milestone module),
half of them with a broken export so that failing tests are exercised too.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "results"
GOAL_MINUTES, GOAL_OVERHEAD = 4.0, 3.0


def submissions(module: str, count: int, folder: Path) -> list[dict]:
    import nbformat

    from autograder import hidden
    from autograder.coursedir import nbgrader_notebook
    from course.build.sources import course_modules

    modules = {m.slug: m for m in course_modules()}
    if module not in modules:
        raise SystemExit(f"no module {module}; the modules are {', '.join(modules)}")
    slugs = [s for s in modules if s <= module] if hidden.uses_own_stack(module) else [module]
    variants = {}
    for variant in ("reference", "broken"):
        paths = {}
        for slug in slugs:
            nb = nbgrader_notebook(modules[slug])
            if variant == "broken" and slug == module:  # a syntax error in the export: every test fails
                nb.cells.append(nbformat.v4.new_code_cell("#| export\ndef broken(:\n    pass\n"))
            paths[slug] = folder / variant / f"{slug}.ipynb"
            paths[slug].parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, paths[slug])
        variants[variant] = paths
    return [variants["reference" if i % 2 == 0 else "broken"] for i in range(count)]


def empty_container_seconds(image: str, repeat: int = 5) -> list[float]:
    from autograder import containers
    seconds = []
    with tempfile.TemporaryDirectory() as staging:
        os.chmod(staging, 0o755)
        for i in range(repeat):
            command = containers.docker_command(f"ttgrade-bench-empty-{os.getpid()}-{i}", image, Path(staging), containers.Limits())
            command = command[:command.index(image) + 1] + ["python", "-c", "pass"]
            started = time.monotonic()
            subprocess.run(command, capture_output=True, check=True)
            seconds.append(time.monotonic() - started)
    return seconds


def main(argv: list[str] | None = None) -> int:
    from autograder import containers

    parser = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", default="02_tensor")
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--image", default=containers.DEFAULT_IMAGE)
    parser.add_argument("--out", type=Path, help="default: results/grading.json (--cluster: grading-cluster-<N>-nodes.json)")
    parser.add_argument("--cluster", action="store_true", help="as Swarm jobs on the grader nodes (DOCKER_HOST: the manager)")
    parser.add_argument("--one-node", action="store_true", help="with --cluster: on the first grader node only")
    args = parser.parse_args(argv)
    if args.cluster:
        return cluster(args)
    args.out = args.out or RESULTS / "grading.json"
    containers.preflight(args.image)
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [containers.Job(args.module, notebooks, label=str(i), image=args.image)
                for i, notebooks in enumerate(submissions(args.module, args.submissions, Path(tmp)))]
        empty = empty_container_seconds(args.image)
        started = time.monotonic()
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(containers.grade_in_container, jobs))
        total = time.monotonic() - started
    graded = [r for r in results if r.get("status") == "graded"]
    overhead = [r["container_seconds"] - r["seconds"] for r in graded]
    figures = {
        "module": args.module, "submissions": args.submissions, "jobs": args.jobs, "cores": os.cpu_count(),
        "graded": len(graded), "errors": [r.get("message") for r in results if r.get("status") != "graded"][:5],
        "total_minutes": round(total / 60, 2), "submissions_per_minute": round(args.submissions / (total / 60), 1),
        "container_seconds_median": round(statistics.median(r["container_seconds"] for r in graded), 2),
        "grader_seconds_median": round(statistics.median(r["seconds"] for r in graded), 2),
        "overhead_seconds_median": round(statistics.median(overhead), 2),
        "overhead_seconds_p95": round(sorted(overhead)[int(0.95 * (len(overhead) - 1))], 2),
        "empty_container_seconds_median": round(statistics.median(empty), 2),
        "scores": sorted({r["score"] for r in graded}),
        "goal": f"<= {GOAL_MINUTES:g} min for 100 on 2 cores, <= {GOAL_OVERHEAD:g} s overhead per submission",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    figures["meets_goal"] = (figures["total_minutes"] * 100 / args.submissions <= GOAL_MINUTES
                             and figures["overhead_seconds_p95"] <= GOAL_OVERHEAD and len(graded) == args.submissions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    lines = ["# Grading throughput", "", f"`python -m bench.grading --module {args.module} --submissions {args.submissions}` "
             f"({figures['machine']}, {args.jobs} containers at a time, {figures['when']})", "",
             "| figure | value |", "|---|---|"]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in figures.items() if key not in ("machine", "when")]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if figures["meets_goal"] else 1


def cluster(args: argparse.Namespace) -> int:
    """--cluster: N submissions as Swarm jobs, on one grader node or all of them; how long, and where each ran."""
    from autograder import containers, swarm_jobs

    if not swarm_jobs.is_swarm_manager():
        raise SystemExit("--cluster: the Docker engine here (DOCKER_HOST) does not manage a swarm")
    nodes = sorted(swarm_jobs.preflight(args.image), key=lambda n: n["Description"]["Hostname"])[:1 if args.one_node else None]
    only = nodes[0]["Description"]["Hostname"] if args.one_node else ""
    workers = swarm_jobs.slots(nodes, containers.Limits())
    out = args.out or RESULTS / f"grading-cluster-{len(nodes)}-nodes.json"
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [containers.Job(args.module, notebooks, label=str(i), image=args.image)
                for i, notebooks in enumerate(submissions(args.module, args.submissions, Path(tmp)))]
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda job: swarm_jobs.grade_as_job(job, None, only), jobs))
        total = time.monotonic() - started
    graded = [r for r in results if r.get("status") == "graded"]
    hostnames = {n["ID"]: n["Description"]["Hostname"] for n in nodes}
    figures = {
        "module": args.module, "submissions": args.submissions, "grader_nodes": sorted(hostnames.values()),
        "jobs_at_once": workers, "graded": len(graded),
        "errors": [r.get("message") for r in results if r.get("status") != "graded"][:5],
        "total_minutes": round(total / 60, 2), "submissions_per_minute": round(args.submissions / (total / 60), 1),
        "job_seconds_median": round(statistics.median(r["container_seconds"] for r in graded), 2) if graded else None,
        "grader_seconds_median": round(statistics.median(r["seconds"] for r in graded), 2) if graded else None,
        "jobs_per_node": {h: sum(1 for r in results if r.get("node") == i) for i, h in hostnames.items()},
        "load_average": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (this machine's, shared by every node of a test cluster)",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    lines = ["# Grading on the cluster", "", f"`python -m bench.grading --cluster{' --one-node' if args.one_node else ''} "
             f"--module {args.module} --submissions {args.submissions}` ({figures['when']})", "",
             "| figure | value |", "|---|---|"] + [f"| {k.replace('_', ' ')} | {v} |" for k, v in figures.items() if k != "when"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if len(graded) == args.submissions else 1


if __name__ == "__main__":
    raise SystemExit(main())
