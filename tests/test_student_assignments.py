"""The student server's Assignments tab and Validate: nbgrader's extensions load on their first use, not at start.

A Jupyter server with docker/student/tinytorch_assignments.py enabled instead of nbgrader's two student
extensions (as the student image has it), on loopback with a token of this test's own.
"""
from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docker" / "student"))
import tinytorch_assignments  # noqa: E402

from tests.test_spawn_start import free_port  # noqa: E402

# as the student image has them (docker/student/Dockerfile); this venv has nbgrader's TA extensions enabled too
EXTENSIONS = {"tinytorch_assignments": True, "nbgrader.server_extensions.assignment_list": False,
              "nbgrader.server_extensions.validate_assignment": False,
              "nbgrader.server_extensions.formgrader": False, "nbgrader.server_extensions.course_list": False}
LOADED = "Loading the assignment_list nbgrader serverextension"  # what nbgrader's extension logs when loaded


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(url, token, log path) of a Jupyter server as the student image starts it, stopped at the end."""
    home = tmp_path_factory.mktemp("home")
    log = home / "server.log"
    port, token = free_port(), secrets.token_hex(16)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--ip=127.0.0.1", f"--port={port}", "--no-browser",
         f"--ServerApp.root_dir={home}", f"--IdentityProvider.token={token}",
         "--allow-root", f"--ServerApp.jpserver_extensions={EXTENSIONS}"],
        cwd=home, stdout=subprocess.DEVNULL, stderr=log.open("w"),
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(ROOT / "docker" / "student"),
             "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "JUPYTER_DATA_DIR": str(home / ".data")})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{url}/api/status", headers={"Authorization": f"token {token}"}, timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, log.read_text()
                time.sleep(0.1)
        yield url, token, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_pattern_covers_every_url_of_nbgraders_student_extensions():
    from nbgrader.server_extensions.assignment_list import handlers as assignment_list
    from nbgrader.server_extensions.validate_assignment import handlers as validate_assignment
    patterns = [pattern for pattern, _ in assignment_list.default_handlers + validate_assignment.default_handlers]
    assert len(patterns) == 6, patterns
    for pattern in patterns:
        assert re.fullmatch(tinytorch_assignments.PATTERN, pattern), pattern
    assert not re.fullmatch(tinytorch_assignments.PATTERN, "/api/contents"), "only nbgrader's URLs"


def test_nbgrader_loads_on_the_first_signed_in_request_and_answers_it(server):
    url, token, log = server
    assert LOADED not in log.read_text(), "nbgrader's extensions were loaded at start"

    anonymous = requests.get(f"{url}/nbgrader_version", params={"version": "0.9.6"}, timeout=30,
                             allow_redirects=False)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]  # to sign in, not onwards
    assert LOADED not in log.read_text(), "a request without a token made the server import nbgrader"

    # the first signed-in request posts a form (Validate): it reaches nbgrader with its body, naming the notebook
    signed_in = {"Authorization": f"token {token}"}
    validated = requests.post(f"{url}/assignments/validate", data={"path": "missing.ipynb"}, headers=signed_in,
                              timeout=60)
    assert [step.status_code for step in validated.history] == [307]
    assert validated.status_code == 200 and validated.json()["success"] is False, validated.text
    assert "missing.ipynb" in validated.json()["value"]
    assert LOADED in log.read_text()

    # then the Assignments tab's extension answers directly, and nbgrader was loaded once
    answer = requests.get(f"{url}/nbgrader_version", params={"version": "0.9.6"}, headers=signed_in, timeout=30)
    assert answer.history == [] and answer.json() == {"success": True}, answer.text
    assert log.read_text().count(LOADED) == 1
