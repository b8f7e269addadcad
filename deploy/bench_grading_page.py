"""Grading from the hub, timed: N students submit a module, the TA clicks on the grading page, the feedback goes back.

    .venv/bin/python deploy/bench_grading_page.py [--root /srv/tinytorch] [--url https://127.0.0.1:443]
                                                  [--students 20] [--assignment 02_tensor]
                                                  [--out results/deploy/grading_page.json]

Run from the repository on the hub host of a deployed classroom, as root (it needs the test extras: Playwright,
nbformat). N bench students (``gbench01``, ...) are started through the hub API, fetch the module and submit
its reference solution through the exchange. Then, in Chromium, the first admin (admins may use the TAs'
grading page) clicks *Collect and grade* and the run page is loaded again and again while the batch runs
(each load timed: the page's response time under load) until it is done; then *Release feedback*. Writes the
seconds from the click to graded and to feedback released, and the page's load times (median, 95th
percentile, max). The bench users' servers are stopped and the users deleted at the end (their submissions
stay in the course directory: use a classroom made for measuring).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_spawn import percentile  # noqa: E402
from hubclient import HubClient  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def submit(hub: HubClient, name: str, course: str, assignment: str, notebook: Path, container_prefix: str) -> None:
    """``name`` fetches ``assignment`` and submits ``notebook`` through the exchange, in their own server."""
    hub.create_user(name)
    hub.api("POST", f"/groups/nbgrader-{course}/users", json={"users": [name]})  # a student of the course
    hub.start_server(name)
    container = f"{container_prefix}-{name}"
    run = lambda user, cmd: subprocess.run(["docker", "exec", "-u", user, "-w", "/home/student", container,  # noqa: E731
                                            "sh", "-c", cmd], check=True, capture_output=True, text=True)
    run(name, f"test -d {assignment} || nbgrader fetch_assignment {assignment} --course {course}")
    subprocess.run(["docker", "cp", str(notebook), f"{container}:/home/student/{assignment}/{assignment}.ipynb"],
                   check=True, capture_output=True)
    run("root", f"chown {name} /home/student/{assignment}/{assignment}.ipynb")
    run(name, f"nbgrader submit {assignment} --course {course}")


def click_and_follow(page, url: str, button: str) -> tuple[float, list[float], str]:
    """Click ``button`` for the assignment on the grading page; load the run page until the run ends.
    Returns the seconds until it ended, each load's seconds, and its final state."""
    started = time.perf_counter()
    page.click(button)
    page.wait_for_url(f"{url}/services/grading/runs/**")
    run_url, loads = page.url, []
    while True:
        before = time.perf_counter()
        page.goto(run_url)
        loads.append(time.perf_counter() - before)
        state = page.inner_text("#run-state").strip()
        if state != "running":
            return time.perf_counter() - started, loads, state
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/srv/tinytorch")
    parser.add_argument("--url", default="https://127.0.0.1:443")
    parser.add_argument("--name", default="tinytorch", help="tinytorch_name of the deploy")
    parser.add_argument("--course", default="tinytorch")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--assignment", default="02_tensor")
    parser.add_argument("--out", default="results/deploy/grading_page.json")
    args = parser.parse_args()

    import nbformat
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from autograder.coursedir import nbgrader_notebook
    from course.build.sources import find_module

    root = Path(args.root)
    hub = HubClient(args.url, (root / "secrets" / "api_token").read_text().strip(), ca=str(root / "tls" / "hub.crt"))
    subprocess.run(["docker", "exec", "-u", f"grader-{args.course}", "-w", "/srv/nbgrader/course", f"{args.name}-hub",
                    "nbgrader", "release_assignment", args.assignment], capture_output=True)  # released already: fine
    notebook = Path(tempfile.mkdtemp()) / f"{args.assignment}.ipynb"
    nbformat.write(nbgrader_notebook(find_module(args.assignment)), notebook)
    names = [f"gbench{i:02d}" for i in range(1, args.students + 1)]
    try:
        for name in names:
            submit(hub, name, args.course, args.assignment, notebook, f"{args.name}-student")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(f"{args.url}/hub/login?next=/services/grading/assignments/{args.assignment}")
            page.fill("#username_input", "admin")
            page.fill("#password_input", (root / "secrets" / "admin_password").read_text().strip())
            page.click("#login_submit")
            page.wait_for_selector("#grade", timeout=60_000)
            graded, loads, state = click_and_follow(page, args.url, "#grade")
            page.goto(f"{args.url}/services/grading/assignments/{args.assignment}")
            released, more, feedback_state = click_and_follow(page, args.url, "#release-feedback")
            browser.close()
    finally:
        for name in names:  # those that were created
            hub.api("DELETE", f"/users/{name}/server", ok=(202, 204, 400, 404))
            hub.api("DELETE", f"/users/{name}", ok=(204, 404))
    loads += more
    result = {"students": args.students, "assignment": args.assignment, "grade_state": state,
              "feedback_state": feedback_state, "click_to_graded_s": round(graded, 1),
              "click_to_feedback_released_s": round(graded + released, 1),
              "page_load_s": {"runs": len(loads), "median": round(statistics.median(loads), 3),
                              "p95": round(percentile(loads, 0.95), 3), "max": round(max(loads), 3)}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
