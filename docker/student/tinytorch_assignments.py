"""nbgrader's student extensions (the Assignments tab and Validate), imported on their first use, not at every start.

Importing them is half the CPU of a student server's start (0.55 of 1.2 CPU seconds on the test machine:
nbgrader's exchange pulls in SQLAlchemy, nbconvert and setuptools), and a start is what a class arriving at
9:00 waits for. So at start this extension answers nbgrader's student URLs with one small handler. The first
request to one of them (from a signed-in student: the handler is authenticated like nbgrader's own) loads
nbgrader's two extensions, exactly as Jupyter would have at start, takes this handler out of the server's
routes and sends the request to the same URL again (307 keeps its method and body), where nbgrader answers.

Enabled instead of nbgrader's assignment_list and validate_assignment in docker/student/Dockerfile.
"""
from __future__ import annotations

import importlib

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado.web import authenticated

# Every URL of nbgrader's two student extensions (their default_handlers; tests/test_student_assignments.py
# checks that this covers them all).
PATTERN = r"/(?:assignments|courses|nbgrader_version)(?:/.*)?"
NBGRADER_EXTENSIONS = ("nbgrader.server_extensions.assignment_list",
                       "nbgrader.server_extensions.validate_assignment")


class LoadNbgraderOnFirstUse(JupyterHandler):
    @authenticated
    def get(self, *args: str) -> None:
        load_nbgrader(self.serverapp)
        self.redirect(self.request.uri or "/", status=307)

    post = put = delete = get


def load_nbgrader(serverapp) -> None:
    """Take this extension's handler out of the routes, then load nbgrader's extensions (once)."""
    web_app = serverapp.web_app
    if web_app.settings.get("tinytorch_nbgrader_loaded"):
        return
    for host_rule in web_app.default_router.rules:  # one nested router per add_handlers call
        router = host_rule.target
        if hasattr(router, "rules"):
            router.rules = [rule for rule in router.rules if rule.target is not LoadNbgraderOnFirstUse]
    for name in NBGRADER_EXTENSIONS:
        importlib.import_module(name).load_jupyter_server_extension(serverapp)
    web_app.settings["tinytorch_nbgrader_loaded"] = True


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "tinytorch_assignments"}]


def _load_jupyter_server_extension(serverapp) -> None:
    base_url = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base_url, PATTERN), LoadNbgraderOnFirstUse)])
