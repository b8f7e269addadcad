"""The grading agent (autograder/agent.py) on its own: what it refuses, one run per assignment, its socket.

The commands of a run are replaced by quick ones here (``Scripted``); tests/test_deploy.py clicks the real
ones from the hub's grading page.
"""
from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import agent as grading
from autograder.nbgrader_adapter import GradeError
from autograder.pipeline import one_batch_at_a_time


class Scripted(grading.Agent):
    """An agent whose runs run ``script`` (Python) instead of nbgrader and the autograder."""
    script = "import time; print('working'); time.sleep(0.5)"

    def commands(self, run):
        return [[sys.executable, "-c", self.script]]


@pytest.fixture
def course(tmp_path) -> Path:
    root = tmp_path / "course"
    for name in ("01_setup", "02_tensor"):
        (root / "source" / name).mkdir(parents=True)
    (root / "submitted" / "alice" / "02_tensor").mkdir(parents=True)
    return root


def make_agent(course: Path, tmp_path: Path, cls=Scripted) -> grading.Agent:
    settings = grading.Settings(course_dir=course, state_dir=tmp_path / "state", hub_container="hub",
                                course_in_hub="/srv/nbgrader/course", grader="grader-tinytorch", grader_uid=1999, gid=100)
    return cls(settings)


def wait(agent: grading.Agent, run_id: str, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = agent.run_view(run_id)
        if run["state"] != "running":
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still running after {seconds} s")


@pytest.mark.parametrize("action, assignment, student, status, says", [
    ("grade", "../../etc", None, 400, "no assignment named"),
    ("grade", "02_tensor/../../x", None, 400, "no assignment named"),
    ("grade", "99_nothing", None, 400, "no assignment named"),
    ("delete", "02_tensor", None, 400, "unknown action"),
    ("regrade", "02_tensor", "bob", 400, "no submission of 02_tensor from 'bob'"),
    ("regrade", "02_tensor", "../alice", 400, "no submission"),
    ("regrade", "02_tensor", None, 400, "name the student"),
])
def test_requests_for_unknown_or_path_like_names_are_refused(course, tmp_path, action, assignment, student,
                                                              status, says):
    agent = make_agent(course, tmp_path)
    with pytest.raises(grading.Refused) as refused:
        agent.start(action, assignment, student, "tina")
    assert refused.value.status == status and says in str(refused.value)
    assert not list((tmp_path / "state" / "runs").glob("*.json"))  # nothing started


def test_one_run_per_assignment_at_a_time_and_its_output_is_kept(course, tmp_path):
    agent = make_agent(course, tmp_path)
    first = agent.start("collect", "02_tensor", None, "tina")
    with pytest.raises(grading.Refused) as busy:
        agent.start("collect", "02_tensor", None, "tom")
    assert busy.value.status == 409 and first.id in str(busy.value)
    other = agent.start("collect", "01_setup", None, "tom")  # another assignment may run meanwhile
    done = wait(agent, first.id)
    assert done["state"] == "done" and "working" in done["log"] and done["by"] == "tina"
    assert wait(agent, other.id)["state"] == "done"
    assert agent.start("collect", "02_tensor", None, "tom").id != first.id  # free again


def test_a_failing_command_fails_the_run_and_frees_the_assignment(course, tmp_path):
    agent = make_agent(course, tmp_path)
    agent.script = "import sys; print('nbgrader said no'); sys.exit(2)"
    run = wait(agent, agent.start("collect", "02_tensor", None, "tina").id)
    assert run["state"] == "failed" and "nbgrader said no" in run["log"] and "(exit status 2)" in run["log"]
    assert agent.busy == {}


def test_a_run_cut_short_by_a_restart_says_so(course, tmp_path):
    agent = make_agent(course, tmp_path)
    cut = grading.Run("20260101-000000-abcdef", "grade", "02_tensor", None, "tina")  # what a killed agent left
    agent.save(cut)
    restarted = make_agent(course, tmp_path)
    run = restarted.run_view(cut.id)
    assert run["state"] == "interrupted" and "start it again" in run["log"][-1]
    assert restarted.start("grade", "02_tensor", None, "tina")  # the assignment is not left busy


def test_progress_comes_from_the_grading_events(course, tmp_path):
    agent = make_agent(course, tmp_path)
    run = wait(agent, agent.start("collect", "02_tensor", None, "tina").id)
    events = tmp_path / "state" / "runs" / f"{run['id']}.events"
    events.write_text(json.dumps({"student": "alice", "state": "running", "detail": ""}) + "\n"
                      + json.dumps({"student": "alice", "state": "graded", "detail": "hidden tests 20/20"}) + "\n"
                      + "not json\n")
    assert agent.run_view(run["id"])["submissions"] == {"alice": {"state": "graded", "detail": "hidden tests 20/20"}}


def test_the_real_commands_are_what_a_ta_types_with_checked_names(course, tmp_path):
    agent = make_agent(course, tmp_path, cls=grading.Agent)
    run = grading.Run("20260101-000000-abcdef", "regrade", "02_tensor", "alice", "tina")
    grade, chown = agent.commands(run)
    assert grade[1:6] == ["-m", "autograder", "grade", "02_tensor", "--course"]
    assert grade[grade.index("--image") + 1] == "tinytorch/grader:latest"
    assert grade[-3:] == ["--student", "alice", "--force"] and "--no-collect" in grade
    assert chown[:4] == ["chown", "-R", "--from=0:0", "1999:100"]
    collect = agent.commands(grading.Run("x", "grade", "02_tensor", None, "tina"))[0]
    assert collect == ["docker", "exec", "-u", "grader-tinytorch", "-w", "/srv/nbgrader/course", "hub",
                       "nbgrader", "collect", "02_tensor", "--update"]


def test_autograder_grade_takes_the_same_lock(tmp_path):
    with one_batch_at_a_time(tmp_path, "02_tensor"):
        with pytest.raises(GradeError, match="02_tensor is being graded right now"):
            with one_batch_at_a_time(tmp_path, "02_tensor"):
                pass
        with one_batch_at_a_time(tmp_path, "01_setup"):
            pass
    with one_batch_at_a_time(tmp_path, "02_tensor"):  # released
        pass


def request(path: Path, method: str, url: str, body: dict | None = None) -> tuple[int, dict | str]:
    class Unix(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(str(path))
    connection = Unix("agent", timeout=10)
    connection.request(method, url, body=json.dumps(body) if body is not None else None)
    response = connection.getresponse()
    data = response.read().decode()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data


def test_the_socket_answers_only_its_owner_and_speaks_json(course, tmp_path):
    import os
    agent = make_agent(course, tmp_path)
    path = tmp_path / "agent.sock"
    threading.Thread(target=grading.serve, args=(agent, path, (os.getuid(), os.getgid())), daemon=True).start()
    for _ in range(100):
        if path.exists():
            break
        time.sleep(0.05)
    assert (path.stat().st_mode & 0o777) == 0o600
    status, body = request(path, "POST", "/runs", {"action": "grade", "assignment": "../../etc/passwd", "by": "x"})
    assert status == 400 and "no assignment named" in body["error"]
    status, body = request(path, "POST", "/runs", {"action": "collect", "assignment": "02_tensor", "by": "tina"})
    assert status == 202 and body["state"] == "running"
    status, busy = request(path, "POST", "/runs", {"action": "collect", "assignment": "02_tensor", "by": "tom"})
    assert status == 409 and "being graded" in busy["error"]
    wait(agent, body["id"])
    status, run = request(path, "GET", f"/runs/{body['id']}")
    assert status == 200 and run["state"] == "done"
    status, overview = request(path, "GET", "/assignments")
    assert [a["name"] for a in overview["assignments"]] == ["01_setup", "02_tensor"]
    assert overview["assignments"][1]["submitted"] == 1
    status, missing = request(path, "GET", "/files/02_tensor/otter")
    assert status == 404 and "grade 02_tensor first" in missing["error"]
    assert request(path, "GET", "/files/..%2F..%2Fetc/otter")[0] == 400
    assert request(path, "GET", "/runs/../../x")[0] == 404
    status, text = request(path, "POST", "/runs", None)
    assert status == 400
