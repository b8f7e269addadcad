"""Spawn-time benchmark: start N students' servers one after another through the hub API.

    deploy/.venv/bin/python deploy/bench_spawn.py [--root /srv/tinytorch] [--url https://127.0.0.1:443]
                                                  [--spawns 20] [--returning] [--out results/deploy/spawn.json]
    deploy/.venv/bin/python deploy/bench_spawn.py --at-once --spawns 60 --out results/deploy/spawn-60.json

Each spawn is a new user (``bench01``, ...), timed from the API request until the
hub reports the server ready (home made with its quota, container created, Jupyter
answering); each server runs one cell importing tinytorch, then is stopped. With
--returning each user's server is then started a second time (the home is there:
a returning student). Writes the times, their median and 95th percentile, where
the seconds of each spawn went (STEPS, from Docker's events, the container's
start and the server's own log, all on this host's clock), and the student
image's size. With --at-once all the servers are asked for at the same moment (a
class arriving): it writes when each was ready and when all were, with the hub's
spawn limit (how many start at once). The bench users and their homes are removed
at the end.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hub_config import load_course_config  # noqa: E402 - the one reader of the course config
from hubclient import HubClient  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# Where one spawn's seconds go, in order; each is the time between two moments on this host's clock.
STEPS = {
    "home": "the hub's throw-away container making the home (first start only)",
    "hub_to_container": "from the request (or the home made) until Docker created the server's container",
    "container_start": "Docker starting it (namespaces, mounts, network)",
    "jupyter_start": "start script, Jupyter's imports and extensions, until the server listens",
    "hub_notices": "until the hub has seen the server answer and calls it ready",
}


def docker_time(stamp: str) -> float:
    """Docker's RFC 3339 time with nanoseconds (2026-11-30T14:00:00.123456789Z) as a Unix time."""
    day, _, fraction = stamp.rstrip("Z").partition(".")
    whole = datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.timezone.utc).timestamp()
    return whole + float(f"0.{fraction or 0}")


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60).stdout


def breakdown(container: str, requested: float, ready: float) -> dict[str, float]:
    """Seconds per step of STEPS for the spawn of ``container`` (running now) requested and ready at these times."""
    home = [json.loads(line) for line in docker(
        "events", "--since", f"{requested:.3f}", "--until", f"{ready:.3f}", "--format", "{{json .}}",
        "--filter", "label=org.tinytorch.role=make-home", "--filter", "event=create",
        "--filter", "event=die").splitlines()]
    created, started = docker("inspect", "--format", "{{.Created}} {{.State.StartedAt}}", container).split()
    # the last home made before this container (another classroom on the host may make homes meanwhile)
    home_times = {event["status"]: event["timeNano"] / 1e9 for event in sorted(home, key=lambda e: e["timeNano"])
                  if event["timeNano"] / 1e9 <= docker_time(created)}
    logs = subprocess.run(["docker", "logs", "--timestamps", container], capture_output=True, text=True,
                          timeout=60)
    listening = [line.split()[0] for line in (logs.stdout + logs.stderr).splitlines() if "is running at" in line]
    if not listening:
        raise RuntimeError(f"{container}'s log has no 'is running at' line: cannot tell when Jupyter listened")
    made = home_times.get("die", requested)  # no home made (a returning student): from the request
    created_at, started_at, listening_at = docker_time(created), docker_time(started), docker_time(min(listening))
    seconds = [made - home_times.get("create", made), created_at - made, started_at - created_at,
               listening_at - started_at, ready - listening_at]
    return {step: round(value, 2) for step, value in zip(STEPS, seconds)}


def cpu_seconds(container: str) -> float:
    """The CPU time all of a running container's processes have used so far (its cgroup, v2 or v1)."""
    stat = docker("exec", container, "sh", "-c",
                  "cat /sys/fs/cgroup/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpuacct/cpuacct.usage").split()
    return int(stat[stat.index("usage_usec") + 1]) / 1e6 if "usage_usec" in stat else int(stat[0]) / 1e9


def summary(times: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(times), 2), "p95_s": round(percentile(times, 0.95), 2)}


def request_servers(hub: HubClient, users: list[str]) -> None:
    """Ask for every user's server at the same moment: one request each, side by side (each answer waits until
    that server is up, or for the hub's slow_spawn_timeout, 10 s)."""
    def request(user: str) -> None:
        HubClient(hub.url, hub.token, ca=hub.ca).api("POST", f"/users/{user}/server", ok=(201, 202))

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        list(pool.map(request, users))


def all_at_once(hub: HubClient, users: list[str], timeout: float = 900) -> dict[str, float]:
    """Ask for every user's server at the same moment; return the seconds until each was ready (to 1 s).

    It asks the hub once a second for the users whose server is ready, and only those: the hub builds every
    listed user's model in its one thread (0.3 to 0.5 s for all 56 users of a test classroom), so listing all
    users every half second, as this did before, took most of the hub's time while the class was starting."""
    started = time.perf_counter()
    request_servers(hub, users)
    ready: dict[str, float] = {}
    while len(ready) < len(users):
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"after {timeout} s, {len(users) - len(ready)} servers were still not ready")
        for listed in hub.api("GET", "/users", params={"state": "ready"}).json():
            if listed["name"] in users and listed["name"] not in ready:
                ready[listed["name"]] = round(time.perf_counter() - started, 2)
        time.sleep(1)
    return ready


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


def remove_home(home: Path) -> None:
    """A home with a quota is a btrfs subvolume (root: inode 256); without one, a folder."""
    if home.is_dir() and home.stat().st_ino == 256:
        subprocess.run(["btrfs", "subvolume", "delete", str(home)], capture_output=True, check=True)
    elif home.exists():
        shutil.rmtree(home)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/srv/tinytorch", help="tinytorch_root of the deploy")
    parser.add_argument("--url", default="https://127.0.0.1:443")
    parser.add_argument("--spawns", type=int, default=20)
    parser.add_argument("--returning", action="store_true", help="then start each user's server a second time")
    parser.add_argument("--at-once", action="store_true", help="ask for all the servers at the same moment")
    parser.add_argument("--out", default="results/deploy/spawn.json")
    args = parser.parse_args()

    token = Path(args.root, "secrets", "api_token").read_text().strip()
    hub = HubClient(args.url, token, ca=str(Path(args.root, "tls", "hub.crt")))
    cfg = load_course_config(Path(args.root, "config", "course.yml"))
    spawner = cfg["spawner"]
    image = spawner["image"]
    size = int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", image],
                              capture_output=True, text=True, check=True).stdout)
    users = [f"bench{i:02d}" for i in range(1, args.spawns + 1)]
    runs: dict[str, list[dict]] = {"first": [], "returning": []}

    def spawn(user: str, run: str) -> None:
        requested = time.time()
        seconds = hub.start_server(user)
        container = f"{spawner['container_prefix']}-{user}"
        # the CPU its start took (all its processes, from its cgroup): what a class arriving at once shares out
        cpu_s = cpu_seconds(container)
        steps = breakdown(container, requested, requested + seconds)
        assert "tinytorch" in hub.run_code(user, "import tinytorch; print(tinytorch.__name__)")
        hub.stop_server(user)
        runs[run].append({"user": user, "seconds": round(seconds, 2), "cpu_s": round(cpu_s, 2), "steps": steps})
        print(f"{user} ({run}): ready in {seconds:.2f} s, {cpu_s:.2f} CPU s {steps}", flush=True)

    try:
        for user in users:
            hub.create_user(user)
            if not args.at_once:
                spawn(user, "first")
                if args.returning:
                    spawn(user, "returning")
        if args.at_once:
            at_once = all_at_once(hub, users)
    finally:
        for user in users:
            try:
                hub.stop_server(user)
                hub.api("DELETE", f"/users/{user}", ok=(204, 404))
            except Exception as error:  # keep cleaning up the others
                print(f"cleanup of {user}: {error}", file=sys.stderr)
            remove_home(Path(spawner["homes"]["host_path"], user))
    if args.at_once:
        limit = cfg["hub"]["concurrent_spawn_limit"]
        result = {"students": len(users), "starts_at_once": limit, **summary(list(at_once.values())),
                  "all_ready_s": max(at_once.values()), "seconds": at_once,
                  "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write(result, Path(args.out))
        print(f"{len(users)} at once ({limit} starting at a time): median {result['median_s']} s, p95 "
              f"{result['p95_s']} s, all running after {result['all_ready_s']} s; written to {args.out}")
        return
    times = [spawned["seconds"] for spawned in runs["first"]]
    result = {
        "spawns": len(times), "seconds": times, **summary(times),
        "steps": {step: {"what": what, **summary([spawned["steps"][step] for spawned in runs["first"]])}
                  for step, what in STEPS.items()},
        "cpu_s": summary([spawned["cpu_s"] for spawned in runs["first"]]),
        "runs": runs,
        "student_image": image, "student_image_bytes": size,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if runs["returning"]:
        again = [spawned["seconds"] for spawned in runs["returning"]]
        result["returning"] = {"spawns": len(again), **summary(again)}
    out = Path(args.out)
    write(result, out)
    print(f"median {result['median_s']} s, p95 {result['p95_s']} s over {len(times)} spawns; "
          f"{result['cpu_s']['median_s']} CPU s each (median); student image {size / 1e6:.0f} MB; written to {out}")
    for step, figures in result["steps"].items():
        print(f"  {step:17} median {figures['median_s']:5.2f} s  p95 {figures['p95_s']:5.2f} s  {figures['what']}")
    if "returning" in result:
        print(f"returning: median {result['returning']['median_s']} s, p95 {result['returning']['p95_s']} s")


if __name__ == "__main__":
    main()
