"""A class arriving at once, measured with Locust: N students sign in, start a server, run a cell, fetch and
submit a module, and stop, all through the hub's pages and their servers' own endpoints.

    .venv/bin/python deploy/bench_load.py [--root /srv/tinytorch] [--url https://127.0.0.1:443]
                                          [--students 50] [--arrive-in 120] [--assignment 01_setup]
                                          [--engines unix:///run/e1.sock unix:///run/e2.sock ...]
                                          [--out results/deploy/load-50.json]

Run as root on the hub host of a deployed classroom made for measuring (it needs the test extras: Locust).
Setting up, not measured: the students ``load001``... sign up on the sign-up page, the first admin approves
each (a POST with the XSRF token, as the admin's button does), and each joins the course's students' group
(what the admin does on the admin page). Then Locust starts the students evenly over ``--arrive-in`` seconds;
each does, once, what a student's browser does:

    log in          the login form (its XSRF cookie first)
    spawn           /hub/spawn, then the lab page until JupyterLab answers (the hub's spawn-pending page
                    meanwhile); the seconds from the click to JupyterLab
    run a cell      a kernel through the server's API and its websocket, one NumPy + tinytorch cell
    fetch, submit   the Assignments tab's own requests (nbgrader's assignment list server extension)
    stop            the hub's API with the student's cookie and XSRF header, as the home page's button

While the class runs, ``docker stats`` samples the hub, the proxy, the database (if any) and the students'
servers every few seconds: on this host's Docker, or on a swarm on each engine given with ``--engines`` (the
first is the hub's), which also counts how many students' servers each engine ran at once. Writes each step's
count, errors, median, 95th percentile and max; the peak CPU and memory of the hub, proxy and database; the
memory per student server; the share of this machine's CPU time that was busy while the class ran; and the
errors themselves. The bench students stay (their homes too): run it again and it signs the same students in.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

# Locust first: it patches the standard library for gevent, which must come before ssl is used.
from locust import HttpUser, constant, task
from locust.env import Environment
from locust.exception import StopUser
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
import websocket

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_spawn import percentile  # noqa: E402
from hubclient import HubClient, KernelChannel  # noqa: E402

PASSWORD = "load-bench-password-7"  # the bench students' only: a classroom made for measuring
# An exercise-sized cell a student runs before writing any of the course (the skeleton's ops are stubs).
CELL = ("import numpy as np\nimport tinytorch\n"
        "x = np.random.rand(256, 256).astype(np.float32)\nprint((x @ x.T).shape, tinytorch.__name__)")
STEPS = ["log in", "spawn", "run a cell", "fetch", "submit", "stop"]


def session(ca: str, client: requests.Session | None = None) -> requests.Session:
    """Trust the classroom's certificate, and only it: no CA bundle or proxy from the environment (loopback)."""
    client = client or requests.Session()
    client.trust_env, client.verify = False, ca
    return client


def setup_session(ca: str) -> requests.Session:
    """A session for the setup: the proxy closes a connection idle for 5 s (Node's keep-alive timeout), and a
    request sent on it as it closes ("Remote end closed connection") is sent once more on a new one. Every setup
    request may be: a sign-up sent twice is refused the second time, an approval sent twice approves once."""
    client = session(ca)
    client.mount("https://", HTTPAdapter(max_retries=Retry(total=2, connect=2, read=1, status=0, allowed_methods=None)))
    return client


def sign_up_and_approve(url: str, ca: str, names: list[str], admin_password: str, hub: HubClient, course: str) -> None:
    """The setup, through the same pages a student and the admin use (not measured). A name signed up before
    is refused by the sign-up page, harmlessly; the admin approves those the approval page lists as waiting."""
    for name in names:
        student = setup_session(ca)
        student.get(f"{url}/hub/signup")
        student.post(f"{url}/hub/signup", data={
            "username": name, "signup_password": PASSWORD, "signup_password_confirmation": PASSWORD,
            "_xsrf": student.cookies.get("_xsrf", path="/hub/")}).raise_for_status()
    admin = setup_session(ca)
    admin.get(f"{url}/hub/login")
    admin.post(f"{url}/hub/login", data={"username": "admin", "password": admin_password,
                                         "_xsrf": admin.cookies.get("_xsrf", path="/hub/")}).raise_for_status()
    waiting = admin.get(f"{url}/hub/authorize").text
    for name in names:
        if f'class="success" id="{name}"' not in waiting:  # the page's row of an approved sign-up
            admin.post(f"{url}/hub/authorize/{name}",
                       data={"_xsrf": admin.cookies.get("_xsrf", path="/hub/")}).raise_for_status()
        hub.api("POST", f"/groups/nbgrader-{course}/users", json={"users": [name]})


def docker(engine: str | None, *args: str) -> list[str]:
    """The docker command line for ``engine`` (a daemon's address, as DOCKER_HOST takes it; None: this host's)."""
    return ["docker", *(["-H", engine] if engine else []), *args]


class Sampler(threading.Thread):
    """``docker stats`` of the classroom's containers on each engine every ``every`` seconds until stopped
    (bounded)."""

    def __init__(self, name: str, engines: list[str | None], every: float = 5, most: int = 720):
        super().__init__(daemon=True)
        self.name_prefix, self.engines, self.every, self.most = name, engines, every, most
        self.samples: list[dict] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        for _ in range(self.most):
            for engine in self.engines:
                out = subprocess.run(docker(engine, "stats", "--no-stream", "--format", "{{json .}}"),
                                     capture_output=True, text=True, timeout=60).stdout
                taken = time.time()
                for line in out.splitlines():
                    row = json.loads(line)
                    if row["Name"].startswith(f"{self.name_prefix}-"):
                        self.samples.append({"t": taken, "engine": engine or "local", "name": row["Name"],
                                             "cpu": float(row["CPUPerc"].rstrip("%")),
                                             "mem_mib": mebibytes(row["MemUsage"].split("/")[0])})
            if self.stopped.wait(self.every):
                return

    def most_students_at_once(self) -> dict[str, int]:
        """Per engine, the most students' servers one sample saw running there."""
        counts: dict[tuple[str, float], int] = {}
        for sample in self.samples:
            if sample["name"].startswith(f"{self.name_prefix}-student-"):
                key = (sample["engine"], sample["t"])
                counts[key] = counts.get(key, 0) + 1
        most: dict[str, int] = {}
        for (engine, _), count in counts.items():
            most[engine] = max(most.get(engine, 0), count)
        return most


def machine_cpu() -> tuple[float, float]:
    """This machine's CPU seconds so far, over all its cores: (busy, all), from the first line of /proc/stat."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), sum(ticks) / os.sysconf("SC_CLK_TCK")


def mebibytes(text: str) -> float:
    text = text.strip()
    for unit, scale in (("GiB", 1024), ("MiB", 1), ("KiB", 1 / 1024), ("B", 1 / 1024 ** 2)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(f"docker stats memory {text!r}")


def make_student_class(url: str, ca: str, course: str, assignment: str, names):
    class Student(HttpUser):
        host = url
        wait_time = constant(0)

        def on_start(self):
            # Locust tops the count up while it ramps, so a student who went home early is replaced: the
            # replacement finds every name taken and leaves at once, measuring nothing.
            self.name = next(names, None)
            if self.name is None:
                raise StopUser()
            session(ca, self.client)

        def timed(self, step: str, action) -> None:
            """Run ``action`` as one Locust request named ``step`` (its time, or its error)."""
            started = time.perf_counter()
            error = None
            try:
                action()
            except Exception as exc:  # recorded as this step's failure, and the student goes home
                error = exc
            self.environment.events.request.fire(request_type="STEP", name=step, exception=error,
                                                 response_time=(time.perf_counter() - started) * 1000,
                                                 response_length=0, context={})
            if error:
                raise StopUser()

        def check(self, response: requests.Response, what: str) -> requests.Response:
            if response.status_code >= 400:
                raise RuntimeError(f"{what}: {response.status_code} {response.text[:200]}")
            return response

        def server_xsrf(self) -> dict:
            return {"X-XSRFToken": self.client.cookies.get("_xsrf", path=f"/user/{self.name}/") or ""}

        @property
        def base(self) -> str:
            return f"/user/{self.name}"

        def log_in(self) -> None:
            c = self.client
            self.check(c.get("/hub/login", name="login page"), "login page")
            self.check(c.post("/hub/login", name="login form", allow_redirects=False, data={
                "username": self.name, "password": PASSWORD, "_xsrf": c.cookies.get("_xsrf", path="/hub/")}),
                "login")
            if not c.cookies.get("jupyterhub-session-id"):
                raise RuntimeError("no session cookie after logging in")

        def spawn(self) -> None:
            c = self.client
            self.check(c.get("/hub/spawn", name="spawn click"), "spawn")
            deadline = time.perf_counter() + 300
            while time.perf_counter() < deadline:
                page = c.get(f"{self.base}/lab", name="lab page (until it answers)")
                if page.status_code == 200 and page.url.endswith(f"{self.base}/lab"):
                    return
                if page.status_code == 424:  # the hub's answer once a spawn has failed (its start_timeout)
                    raise RuntimeError("the hub says the server failed to start")
                time.sleep(0.5)
            raise RuntimeError("JupyterLab did not answer within 300 s")

        def run_a_cell(self) -> None:
            c = self.client
            kernel = self.check(c.post(f"{self.base}/api/kernels", json={"name": "python3"}, name="new kernel",
                                       headers=self.server_xsrf()), "new kernel").json()["id"]
            session = uuid.uuid4().hex
            cookies = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
            ws = websocket.create_connection(
                url.replace("https://", "wss://") + f"{self.base}/api/kernels/{kernel}/channels?session_id={session}",
                header=[f"Cookie: {cookies}"], sslopt={"ca_certs": ca}, timeout=120,
                origin=url.removesuffix(":443"))  # as a browser names its origin (no default port)
            try:
                out = KernelChannel(ws, session, f"{self.name}'s kernel", 120).run(CELL)
            finally:
                ws.close()
            if "(256, 256) tinytorch" not in out:
                raise RuntimeError(f"the cell printed {out!r}")
            self.check(c.delete(f"{self.base}/api/kernels/{kernel}", name="shut kernel", headers=self.server_xsrf()),
                       "shut kernel")

        def assignments(self, action: str) -> None:
            listed = self.check(self.client.post(f"{self.base}/assignments/{action}", name=action,
                                                 headers=self.server_xsrf(),
                                                 data={"course_id": course, "assignment_id": assignment}), action)
            if '"success": false' in listed.text:
                raise RuntimeError(f"{action}: {listed.text[:300]}")

        def stop(self) -> None:
            c = self.client
            self.check(c.delete(f"/hub/api/users/{self.name}/server", name="stop",
                                headers={"X-XSRFToken": c.cookies.get("_xsrf", path="/hub/") or ""}), "stop")

        @task
        def one_session(self):
            self.timed("log in", self.log_in)
            self.timed("spawn", self.spawn)
            self.timed("run a cell", self.run_a_cell)
            self.timed("fetch", lambda: self.assignments("fetch"))
            self.timed("submit", lambda: self.assignments("submit"))
            self.timed("stop", self.stop)
            raise StopUser()

    return Student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/srv/tinytorch")
    parser.add_argument("--url", default="https://127.0.0.1:443")
    parser.add_argument("--name", default="tinytorch", help="tinytorch_name of the deploy (container names)")
    parser.add_argument("--course", default="tinytorch")
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--arrive-in", type=float, default=120, help="seconds over which the students arrive")
    parser.add_argument("--assignment", default="01_setup")
    parser.add_argument("--engines", nargs="+", default=[None], metavar="DOCKER_HOST",
                        help="on a swarm: each engine's address (the hub's first), to sample; default: this host's")
    parser.add_argument("--out", default=None, help="default: results/deploy/load-<students>.json")
    args = parser.parse_args()
    root = Path(args.root)
    ca = str(root / "tls" / "hub.crt")
    hub = HubClient(args.url, (root / "secrets" / "api_token").read_text().strip(), ca=ca)
    subprocess.run(docker(args.engines[0], "exec", "-u", f"grader-{args.course}", "-w", "/srv/nbgrader/course",
                          f"{args.name}-hub", "nbgrader", "release_assignment", args.assignment),
                   capture_output=True)  # released already: fine
    names = [f"load{i:03d}" for i in range(1, args.students + 1)]
    sign_up_and_approve(args.url, ca, names, (root / "secrets" / "admin_password").read_text().strip(), hub,
                        args.course)
    for name in names:  # a clean start: no server left from an earlier run
        hub.stop_server(name)

    env = Environment(user_classes=[make_student_class(args.url, ca, args.course, args.assignment, iter(names))])
    runner = env.create_local_runner()
    sampler = Sampler(args.name, args.engines)
    sampler.start()
    started, cpu_before = time.time(), machine_cpu()
    runner.start(args.students, spawn_rate=args.students / max(args.arrive_in, 1))
    deadline = started + args.arrive_in + 900
    while time.time() < deadline:  # every student went home (or gave up), once all have arrived
        time.sleep(2)
        if runner.spawning_greenlet.dead and runner.user_count == 0:
            break
    all_done = time.time() - started
    busy, everything = (after - before for after, before in zip(machine_cpu(), cpu_before))
    runner.quit()
    sampler.stopped.set()
    sampler.join(timeout=90)

    steps = {}
    for step in STEPS:
        entry = env.stats.get(step, "STEP")
        times = entry.num_requests > 0
        steps[step] = {"done": entry.num_requests - entry.num_failures, "errors": entry.num_failures,
                       "median_s": round(entry.get_response_time_percentile(0.5) / 1000, 2) if times else None,
                       "p95_s": round(entry.get_response_time_percentile(0.95) / 1000, 2) if times else None,
                       "max_s": round(entry.max_response_time / 1000, 2) if times else None}
    pages = env.stats.total
    by_role: dict[str, list[dict]] = {}
    for sample in sampler.samples:
        role = sample["name"][len(args.name) + 1:].split("-")[0]  # hub, proxy, database, student, grading
        by_role.setdefault(role, []).append(sample)
    students_mem = [s["mem_mib"] for s in by_role.get("student", [])]
    result = {
        "students": args.students, "arrive_in_s": args.arrive_in, "assignment": args.assignment,
        "all_done_s": round(all_done, 1), "steps": steps,
        "requests": {"count": pages.num_requests, "errors": pages.num_failures,
                     "median_ms": pages.get_response_time_percentile(0.5),
                     "p95_ms": pages.get_response_time_percentile(0.95)},
        "errors": [{"step": e.name, "error": str(e.error)[:300], "count": e.occurrences}
                   for e in env.stats.errors.values()],
        "containers": {role: {"peak_cpu_percent": max(s["cpu"] for s in rows),
                              "peak_mem_mib": round(max(s["mem_mib"] for s in rows), 1)}
                       for role, rows in by_role.items() if role != "student"},
        "student_server_mem_mib": {"median": round(statistics.median(students_mem), 1),
                                   "p95": round(percentile(students_mem, 0.95), 1)} if students_mem else None,
        "students_at_once_per_engine": sampler.most_students_at_once(),
        # Everything on this machine while the class ran (Locust too, and on the test cluster the engines): near 1,
        # and the starts waited for CPU, not for the hub or Docker.
        "machine": {"cores": os.cpu_count(), "busy_share": round(busy / everything, 2)},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = Path(args.out or f"results/deploy/load-{args.students}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    if any(step["errors"] for step in steps.values()) or steps["stop"]["done"] < args.students:
        sys.exit(1)


if __name__ == "__main__":
    main()
