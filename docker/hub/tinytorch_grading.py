"""The grading page: TAs collect, grade, re-grade, give extensions and hand back feedback from the hub,
without a shell; and the progress page (the same program as the ``progress`` service): each student's
modules, scores, lateness and milestones, and the whole class for TAs.

A JupyterHub service (``/services/grading/``, in the Services menu) run by the hub as the course's grader
user. JupyterHub's OAuth lets in only users with ``access:services!service=grading``: the TAs' group
``formgrade-<course>`` and the admins (hub_config.py); everyone else gets 403. The page runs nothing
itself: each button is a request to the grading agent (autograder/agent.py) over its Unix socket, which
only this user may open, and the agent accepts only "this action, this assignment (, this student)" for
names that exist. Every state change is a POST with JupyterHub's XSRF token; every page is escaped HTML
(student names and messages are student content) under a CSP that allows no script at all: a running
batch's page refreshes itself with a meta refresh.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import time

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import ioloop, template, web

PREFIX = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/grading/")
SOCKET = os.environ.get("TINYTORCH_GRADING_SOCKET", "/run/tinytorch-grading/agent.sock")
COURSE = os.environ.get("TINYTORCH_COURSE_ID", "tinytorch")
COURSE_TITLE = os.environ.get("TINYTORCH_COURSE_TITLE") or COURSE  # the course config's course_title
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'self'; "
       "base-uri 'none'")

CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { background: #f37626; color: white; padding: .6em 1.2em; }
header a, header strong { color: white; margin-right: 1.2em; }
main { padding: 1em 1.2em; max-width: 70em; }
table { border-collapse: collapse; margin: .8em 0; }
th, td { border-bottom: 1px solid #ddd; padding: .35em .8em; text-align: left; vertical-align: top; }
form.inline { display: inline; }
button { padding: .3em .9em; margin-right: .3em; cursor: pointer; }
.message { background: #fff4e5; border: 1px solid #f0b070; padding: .6em 1em; }
.state-done, .state-graded { color: #1a7f37; } .state-failed, .state-error, .state-interrupted { color: #c62828; }
.state-problems, .state-skipped { color: #a15c00; } .state-running, .state-planned { color: #1f5fbf; }
pre { background: #f6f6f6; padding: .8em; max-height: 30em; overflow: auto; white-space: pre-wrap; }
"""

PAGES = {
    "base.html": """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{{ title }} · {{ course_title }}</title>
{% block head %}{% end %}<link rel="stylesheet" href="{{ prefix }}grading.css"></head><body>
<header><strong>{{ course_title }}</strong> <a href="/hub/home">Hub home</a>{% if ta %}<a href="/services/grading/">Grading</a>
<a href="/services/{{ course }}/formgrader">Formgrader</a>{% end %}<a href="/services/progress/">Progress</a>
<span>signed in as {{ user }}</span></header>
<main><h1>{{ title }}</h1>{% if message %}<p class="message" id="message">{{ message }}</p>{% end %}
{% block body %}{% end %}</main></body></html>""",
    "index.html": """{% extends "base.html" %}{% block body %}
<p>Grade runs every submission's visible and hidden tests in hardened containers. Written answers are graded by
hand in the <a href="/services/{{ course }}/formgrader">formgrader</a>.
<a href="{{ prefix }}files/canvas" id="canvas-csv">Canvas CSV (every assignment)</a></p>
<table id="assignments"><tr><th>assignment</th><th>collected</th><th>graded</th><th>last run</th><th></th></tr>
{% for a in assignments %}<tr id="assignment-{{ a['name'] }}"><td><a href="{{ prefix }}assignments/{{ a['name'] }}">{{ a['name'] }}</a></td>
<td>{{ a['submitted'] }}</td><td>{{ a['graded'] }}</td>
<td>{% if a['last'] %}<a href="{{ prefix }}runs/{{ a['last']['id'] }}">{{ a['last']['action'] }}: <span class="state-{{ a['last']['state'] }}">{{ a['last']['state'] }}</span></a>{% end %}</td>
<td>{% if a['gradable'] %}<form class="inline" method="post" action="{{ prefix }}runs">{% raw xsrf_form_html() %}
<input type="hidden" name="assignment" value="{{ a['name'] }}"><button name="action" value="grade">Collect and grade</button></form>{% end %}</td></tr>
{% end %}</table>{% end %}""",
    "assignment.html": """{% extends "base.html" %}{% block body %}
<form class="inline" method="post" action="{{ prefix }}runs">{% raw xsrf_form_html() %}
<input type="hidden" name="assignment" value="{{ a['name'] }}">
<button name="action" value="grade" id="grade">Collect and grade</button>
<button name="action" value="collect">Collect only</button>
<button name="action" value="feedback" id="release-feedback">Release feedback</button></form>
<p>Due: <strong id="due">{{ a['due'] or "no due date" }}</strong> (change it in the formgrader, Manage Assignments;
late work loses what the course's late policy says, on the autograded score)</p>
{% if a['running'] %}<p class="message">Being graded now: <a href="{{ prefix }}runs/{{ a['running'] }}">follow the run</a>.</p>{% end %}
<p>Downloads: <a href="{{ prefix }}files/{{ a['name'] }}/otter" id="otter-csv">Otter CSV ({{ a['name'] }}, hidden tests)</a>
· <a href="{{ prefix }}files/canvas" id="canvas-csv">Canvas CSV (every assignment)</a></p>
<h2>Submissions</h2><table id="students"><tr><th>student</th><th>status</th><th>visible tests</th><th>hidden tests</th>
<th>late</th><th>penalty</th><th>total</th><th>graded at</th><th>note</th><th></th><th>extension</th></tr>
{% for s in a['students'] %}<tr id="student-{{ s['name'] }}"><td>{{ s['name'] }}</td><td class="state-{{ s['status'] }}">{{ s['status'] }}</td>
<td>{{ s['visible'] }}</td><td class="hidden-score">{{ s['hidden'] }}</td>
<td>{% if s['late_hours'] > 0 %}{{ s['late_hours'] }} h{% end %}</td><td class="penalty">{{ "%g" % s['penalty'] if s['penalty'] else "" }}</td>
<td class="total">{% if s['total'] is not None %}{{ "%g" % s['total'] }}/{{ "%g" % s['max'] }}{% end %}</td>
<td>{{ s['graded_at'] }}</td><td>{{ s['message'] }}</td>
<td><form class="inline" method="post" action="{{ prefix }}runs">{% raw xsrf_form_html() %}
<input type="hidden" name="assignment" value="{{ a['name'] }}"><input type="hidden" name="student" value="{{ s['name'] }}">
<button name="action" value="regrade">Grade again</button></form></td>
<td>{% include "extension.html" %}</td></tr>{% end %}</table>
<h2>Extension for a student who has not submitted</h2><p>{% set s = {"name": "", "extension_hours": 0} %}{% include "extension.html" %}</p>
{% if not a['students'] %}<p>No submission collected yet.</p>{% end %}
<h2>Last runs</h2><table><tr><th>run</th><th>what</th><th>by</th><th>state</th></tr>
{% for r in a['runs'] %}<tr><td><a href="{{ prefix }}runs/{{ r['id'] }}">{{ r['id'] }}</a></td><td>{{ r['action'] }}{% if r['student'] %} {{ r['student'] }}{% end %}</td>
<td>{{ r['by'] }}</td><td class="state-{{ r['state'] }}">{{ r['state'] }}</td></tr>{% end %}</table>{% end %}""",
    "extension.html": """<form class="inline" method="post" action="{{ prefix }}extensions">{% raw xsrf_form_html() %}
<input type="hidden" name="assignment" value="{{ a['name'] }}">{% if s['name'] %}<input type="hidden" name="student" value="{{ s['name'] }}">
{% else %}<input name="student" placeholder="user name" size="10" required>{% end %}
<input name="hours" type="number" min="0" max="8760" step="any" value="{{ "%g" % s['extension_hours'] }}" size="4"> h
<button>Set</button></form>""",
    "run.html": """{% extends "base.html" %}
{% block head %}{% if run['state'] == 'running' %}<meta http-equiv="refresh" content="2">{% end %}{% end %}
{% block body %}<p>{{ run['action'] }} of <a href="{{ prefix }}assignments/{{ run['assignment'] }}">{{ run['assignment'] }}</a>
{% if run['student'] %} for {{ run['student'] }}{% end %}, asked by {{ run['by'] }} at {{ started }}:
<strong id="run-state" class="state-{{ run['state'] }}">{{ run['state'] }}</strong>{% if seconds is not None %} after {{ seconds }} s{% end %}</p>
{% if run['submissions'] %}<table id="progress"><tr><th>student</th><th>state</th><th></th></tr>
{% for name, s in sorted(run['submissions'].items()) %}<tr id="progress-{{ name }}"><td>{{ name }}</td><td class="state-{{ s['state'] }}">{{ s['state'] }}</td><td>{{ s['detail'] }}</td></tr>{% end %}
</table>{% end %}<h2>Output</h2><pre id="log">{{ "\\n".join(run['log']) }}</pre>{% end %}""",
}
PAGES["student.html"] = """{% extends "base.html" %}{% block body %}
{% for name, student in table['students'].items() %}
<table id="modules"><tr><th>module</th><th>due</th><th>submitted</th><th>late</th><th>visible tests</th><th>hidden tests</th>
<th>written</th><th>late penalty</th><th>total</th><th>status</th></tr>
{% for a in table['assignments'] %}{% set m = student['modules'][a] %}<tr id="module-{{ a }}"><td>{{ a }}</td>
<td>{{ m['due'] }}{% if m['extension_hours'] %} + {{ "%g" % m['extension_hours'] }} h{% end %}</td><td>{{ m['submitted'] }}</td>
<td>{% if m['late_hours'] > 0 %}{{ m['late_hours'] }} h{% end %}</td>
{% for part in ('visible', 'hidden', 'written') %}<td class="{{ part }}">{{ "" if m[part] is None else "%g" % m[part] }}</td>{% end %}
<td class="penalty">{{ "%g" % m['penalty'] if m['penalty'] else "" }}</td>
<td class="total">{% if m['total'] is not None %}{{ "%g" % m['total'] }}/{{ "%g" % m['max'] }}{% end %}</td><td>{{ m['status'] }}</td></tr>{% end %}
</table>
<h2>Milestones</h2><ul id="milestones">{% for milestone in ("XOR", "MNIST CNN", "TinyGPT") %}{% set m = student["milestones"].get(milestone) %}
<li>{{ milestone }}: {% if m is None %}not graded yet{% elif m['passed'] %}<strong>passed</strong>{% else %}not passed{% end %}
{% if m %} ({{ m['figures'] }}){% end %}</li>{% end %}</ul>
<p>Your feedback for a graded module: the Assignments list in JupyterLab, Fetch Feedback.</p>
{% end %}{% end %}"""
PAGES["class.html"] = """{% extends "base.html" %}{% block body %}
<p><a href="{{ prefix }}progress.csv" id="class-csv">Download the table (CSV)</a></p>
<table id="class"><tr><th>student</th>{% for a in table['assignments'] %}<th>{{ a }}</th>{% end %}<th>milestones passed</th></tr>
{% for name, student in table['students'].items() %}<tr id="row-{{ name }}"><td><a href="{{ prefix }}students/{{ name }}">{{ name }}</a></td>
{% for a in table['assignments'] %}{% set m = student['modules'][a] %}<td>{% if m['total'] is not None %}{{ "%g" % m['total'] }}{% if m['penalty'] %} (late -{{ "%g" % m['penalty'] }}){% end %}{% end %}</td>{% end %}
<td>{{ ", ".join(t for t, m in student['milestones'].items() if m['passed']) }}</td></tr>{% end %}</table>{% end %}"""
LOADER = template.DictLoader(PAGES)


class AgentError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def agent(method: str, path: str, body: dict | None = None) -> tuple[str, bytes]:
    """One request to the grading agent on its Unix socket; AgentError for an answer that is not 2xx."""
    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            self.sock.connect(SOCKET)

    connection = UnixConnection("agent")
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
    except OSError as error:
        raise AgentError(503, f"the grading agent does not answer ({error}): ask the admin to run the deploy") from None
    finally:
        connection.close()
    if response.status >= 300:
        try:
            message = json.loads(data).get("error") or response.reason
        except ValueError:
            message = response.reason
        raise AgentError(response.status, message)
    return response.getheader("Content-Type", ""), data


class Page(HubOAuthenticated, web.RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    def show(self, name: str, title: str, status: int = 200, **values) -> None:
        self.set_status(status)
        self.finish(LOADER.load(name).generate(
            title=title, prefix=PREFIX, course=COURSE, course_title=COURSE_TITLE, user=self.current_user["name"],
            ta=values.pop("ta", True),
            message=values.pop("message", ""), xsrf_form_html=self.xsrf_form_html, **values))

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        return json.loads(agent(method, path, body)[1])

    def fetch(self, path: str) -> dict:
        """GET from the agent; what it refuses (an unknown name: 400, 404) is this page's answer too."""
        try:
            return self.call("GET", path)
        except AgentError as error:
            raise web.HTTPError(error.status, str(error)) from None

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {error if isinstance(error, AgentError) else self._reason}\n")


class Index(Page):
    @web.authenticated
    def get(self) -> None:
        assignments = self.call("GET", "/assignments")["assignments"]
        self.show("index.html", "Grading", assignments=assignments)


class Assignment(Page):
    @web.authenticated
    def get(self, name: str) -> None:
        self.show("assignment.html", name, a=self.fetch(f"/assignments/{name}"))


class Runs(Page):
    @web.authenticated
    def post(self) -> None:
        request = {"action": self.get_body_argument("action", ""), "assignment": self.get_body_argument("assignment", ""),
                   "student": self.get_body_argument("student", "") or None, "by": self.current_user["name"]}
        try:
            run = self.call("POST", "/runs", request)
        except AgentError as error:  # unknown names, or the assignment is being graded: say so, change nothing
            self.show("base.html", "Not started", status=error.status, message=str(error))
            return
        self.redirect(f"{PREFIX}runs/{run['id']}")


class Extension(Page):
    @web.authenticated
    def post(self) -> None:
        assignment = self.get_body_argument("assignment", "")
        request = {"assignment": assignment, "student": self.get_body_argument("student", ""),
                   "hours": self.get_body_argument("hours", ""), "by": self.current_user["name"]}
        try:
            answer = self.call("POST", "/extensions", request)
        except AgentError as error:
            self.show("base.html", "Extension not saved", status=error.status, message=str(error))
            return
        self.show("base.html", f"Extension for {request['student']}", message=answer["message"])


class Run(Page):
    @web.authenticated
    def get(self, run_id: str) -> None:
        run = self.fetch(f"/runs/{run_id}")
        finished = run["finished"] or time.time()
        self.show("run.html", f"Run {run['id']}", run=run, started=time.strftime("%H:%M:%S", time.localtime(run["started"])),
                  seconds=round(finished - run["started"]) if run["state"] != "running" else None)


class File(Page):
    @web.authenticated
    def get(self, assignment: str | None = None) -> None:
        path = f"/files/{assignment}/otter" if assignment else "/files/canvas"
        try:
            content_type, data = agent("GET", path)
        except AgentError as error:
            raise web.HTTPError(error.status, str(error)) from None
        name = f"{assignment}_final_grades.csv" if assignment else "canvas_gradebook.csv"
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(data)


def is_ta(name: str) -> bool:
    """Is this hub user an admin or in the course's TAs' group? (asked of the hub, with the service's token)"""
    import urllib.parse
    import urllib.request

    url = f"{os.environ['JUPYTERHUB_API_URL']}/users/{urllib.parse.quote(name)}"
    request = urllib.request.Request(url, headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        user = json.loads(response.read())
    return bool(user.get("admin")) or f"formgrade-{COURSE}" in user.get("groups", [])


class Progress(Page):
    """/services/progress/: a student's own modules and milestones; for TAs and admins, the whole class."""

    @web.authenticated
    def get(self, student: str | None = None) -> None:
        me = self.current_user["name"]
        ta = is_ta(me)
        if student is not None and student != me and not ta:
            raise web.HTTPError(403, "you may see your own progress only")
        if student is None and ta:
            self.show("class.html", "Progress of the class", table=self.call("GET", "/progress"))
            return
        try:
            table = self.call("GET", f"/progress/{student or me}")
        except AgentError as error:
            self.show("base.html", f"Progress of {student or me}", message=str(error), ta=ta)
            return
        self.show("student.html", f"Progress of {student or me}", table=table, ta=ta)


class DueDates(Page):
    """/services/progress/due.json: the due dates and the visitor's own extensions, which the students' Assignment
    List shows (docker/student/due_dates/index.js asks each time it draws the list)."""

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(self.fetch(f"/due/{self.current_user['name']}")))


class ProgressCsv(Page):
    @web.authenticated
    def get(self) -> None:
        if not is_ta(self.current_user["name"]):
            raise web.HTTPError(403, "the class table is for TAs")
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{COURSE}_progress.csv"')
        self.finish(agent("GET", "/progress.csv")[1])


class Style(web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/css")
        self.finish(CSS)


def make_app() -> web.Application:
    if os.environ.get("TINYTORCH_PAGE") == "progress":  # the progress service; "grading" (or unset): the grading page
        return web.Application([
            (PREFIX, Progress),
            (url_path_join(PREFIX, "grading.css"), Style),
            (url_path_join(PREFIX, r"students/([a-z][a-z0-9_-]{0,31})"), Progress),
            (url_path_join(PREFIX, "progress.csv"), ProgressCsv),
            (url_path_join(PREFIX, "due.json"), DueDates),
            (url_path_join(PREFIX, "oauth_callback"), HubOAuthCallbackHandler),
        ], cookie_secret=os.urandom(32), xsrf_cookies=True)
    return web.Application([
        (PREFIX, Index),
        (url_path_join(PREFIX, "grading.css"), Style),
        (url_path_join(PREFIX, r"assignments/([0-9a-z_]+)"), Assignment),
        (url_path_join(PREFIX, "runs"), Runs),
        (url_path_join(PREFIX, "extensions"), Extension),
        (url_path_join(PREFIX, r"runs/([0-9a-f-]+)"), Run),
        (url_path_join(PREFIX, "files/canvas"), File),
        (url_path_join(PREFIX, r"files/([0-9a-z_]+)/otter"), File),
        (url_path_join(PREFIX, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32), xsrf_cookies=True)


def main() -> None:
    """Listen on the port of the service's URL, at the address hub_config.page_services_ip chose (every address
    of the hub container on one host, the hub's own network's on a swarm)."""
    url = os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    make_app().listen(port, address=os.environ.get("TINYTORCH_LISTEN_IP", "0.0.0.0"))
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
