"""The grading agent: the one way from the hub's grading page to the grading containers.

``python -m autograder agent`` runs in a container of its own (the deploy's ``grading`` role) that has the
Docker socket, the course directory and nothing facing the network: it listens on a Unix socket that only
the course's grader uid may open (the hub's grading page runs as that user; see README, "Grading from the
hub"). What it accepts is small on purpose:

    GET  /assignments                  each assignment: submissions, graded, the run going on
    GET  /assignments/<A>              its students' results and its last runs
    POST /runs {action, assignment, student?, by}
                                       collect | grade (collect, then grade what changed) | regrade (one
                                       student, again) | feedback (release it) | recompute (late penalties,
                                       CSVs, feedback; grades nothing new); 202 and the run, 400 for an
                                       unknown assignment, student or action, 409 while A is being graded
    POST /extensions {assignment, student, hours, by}
                                       give a student more time (0 takes it back), then recompute
    GET  /progress, /progress/<student>, /progress.csv
                                       the class's (or one student's) scores, lateness and milestones
    GET  /due/<student>                every assignment's due date and the student's own extensions (their
                                       Assignment List shows them, through the progress page's due.json)
    GET  /runs/<id>                    a run: its state, each submission's progress, its log
    GET  /files/canvas, /files/<A>/otter   the Canvas CSV (every assignment), Otter's CSV of A

A run is a list of the commands a TA types (``nbgrader collect`` in the hub container as the grader,
``autograder grade``, ``nbgrader release_feedback``), each refused unless the names in it are known. One run
per assignment at a time; ``autograder grade`` takes the same lock, so a script and the page never grade one
assignment twice at once. Runs are kept as JSON in the state folder; a run cut short by a restart says so.
"""
from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tornado import web

import hub_config
from autograder import containers, hidden, late, progress
from autograder.nbgrader_adapter import source_assignments, submitted_students
from autograder.results import read_results, results_dir, write_atomic

ASSIGNMENT = re.compile(r"^[0-9]{2}_[a-z0-9_]{1,40}$")
ACTIONS = ("collect", "grade", "regrade", "feedback", "recompute")
LOG_LINES = 400           # the last lines of a run's output that it keeps
RUNS_SHOWN = 10


class Refused(Exception):
    """A request the agent does not carry out; ``status`` is the HTTP status the page shows."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Settings:
    course_dir: Path            # the course directory, at the same path as on the host (grading containers
    state_dir: Path             # bind-mount their staging folders from inside it)
    hub_container: str
    course_in_hub: str          # where the hub container sees the course directory
    grader: str                 # the course's grader user (owns the course directory)
    grader_uid: int
    gid: int
    grader_image: str = containers.DEFAULT_IMAGE   # the deploy's own build, not whatever :latest is


@dataclass
class Run:
    id: str
    action: str
    assignment: str
    student: str | None
    by: str
    state: str = "running"      # running | done | problems | failed | interrupted
    started: float = field(default_factory=time.time)
    finished: float | None = None
    log: list[str] = field(default_factory=list)


class Agent:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.runs_dir = settings.state_dir / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.busy: dict[str, str] = {}  # assignment -> the id of its run going on
        for path in self.runs_dir.glob("*.json"):  # cut short by a restart of the agent
            run = self.load(path.stem)
            if run.state == "running":
                run.state, run.finished = "interrupted", time.time()
                run.log.append("the grading agent restarted during this run: start it again")
                self.save(run)

    # -- what exists ------------------------------------------------------------------------------------
    def assignments(self) -> list[str]:
        return [name for name in source_assignments(self.settings.course_dir) if ASSIGNMENT.match(name)]

    def submitted(self, assignment: str) -> list[str]:
        return submitted_students(self.settings.course_dir, assignment)

    def require(self, assignment: str, student: str | None = None) -> None:
        if not isinstance(assignment, str) or not ASSIGNMENT.match(assignment) or assignment not in self.assignments():
            raise Refused(400, f"no assignment named {str(assignment)[:60]!r} in this course")
        if student is not None and (not isinstance(student, str) or not re.match(hub_config.USERNAME_PATTERN, student)
                                    or student not in self.submitted(assignment)):
            raise Refused(400, f"no submission of {assignment} from {str(student)[:40]!r} has been collected")

    # -- runs -------------------------------------------------------------------------------------------
    def start(self, action: str, assignment: str, student: str | None, by: str) -> Run:
        if action not in ACTIONS:
            raise Refused(400, f"unknown action {str(action)[:20]!r}; one of {', '.join(ACTIONS)}")
        self.require(assignment, student if action == "regrade" else None)
        if action == "regrade" and not student:
            raise Refused(400, "name the student to grade again")
        if action in ("grade", "regrade") and assignment not in hidden.assignments():
            raise Refused(400, f"{assignment} has no hidden tests to grade")
        with self.lock:
            if assignment in self.busy:
                raise Refused(409, f"{assignment} is being graded right now (run {self.busy[assignment]}); "
                                   "wait for it to finish")
            run = Run(f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}", action, assignment,
                      student if action == "regrade" else None, str(by)[:40])
            self.busy[assignment] = run.id
        self.save(run)
        threading.Thread(target=self.execute, args=(run,), daemon=True).start()
        return run

    def execute(self, run: Run) -> None:
        try:
            statuses = [self.step(run, command) for command in self.commands(run)]
            run.state = "done" if all(s == 0 for s in statuses) else "problems" if 2 not in statuses else "failed"
        except Exception as error:  # noqa: BLE001 - the run records what stopped it; the agent goes on
            run.state = "failed"
            run.log.append(f"the grading agent failed: {type(error).__name__}: {error}")
        finally:
            run.finished = time.time()
            with self.lock:  # free before the final state is seen: whoever sees it may start the next run
                self.busy.pop(run.assignment, None)
            self.save(run)

    def commands(self, run: Run) -> list[list[str]]:
        """What the TA would type for this run (checked names only)."""
        s = self.settings
        in_hub = ["docker", "exec", "-u", s.grader, "-w", s.course_in_hub, s.hub_container, "nbgrader"]
        grade = [sys.executable, "-m", "autograder", "grade", run.assignment, "--course", str(s.course_dir),
                 "--image", s.grader_image, "--no-collect", "--no-progress",
                 "--events", str(self.runs_dir / f"{run.id}.events")]
        chown = ["chown", "-R", "--from=0:0", f"{s.grader_uid}:{s.gid}", str(s.course_dir)]
        return {
            "collect": [in_hub + ["collect", run.assignment, "--update"]],
            "grade": [in_hub + ["collect", run.assignment, "--update"], grade, chown],
            "regrade": [grade + ["--student", str(run.student), "--force"], chown],
            "feedback": [in_hub + ["release_feedback", run.assignment]],
            "recompute": [grade, chown],
        }[run.action]

    def step(self, run: Run, command: list[str]) -> int:
        shown = " ".join(command[command.index("nbgrader"):] if "nbgrader" in command else
                         ["autograder", *command[3:]] if command[0] == sys.executable else command[:3])
        run.log.append(f"$ {shown}")
        self.save(run)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   errors="replace", cwd=self.settings.course_dir)
        assert process.stdout is not None
        for line in process.stdout:
            run.log.append(line.rstrip()[:500])
            del run.log[:-LOG_LINES]
        status = process.wait()
        if status:
            run.log.append(f"(exit status {status})")
        self.save(run)
        return status

    def save(self, run: Run) -> None:
        write_atomic(self.runs_dir / f"{run.id}.json", json.dumps(asdict(run)) + "\n")

    def load(self, run_id: str) -> Run:
        if not re.match(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$", run_id) or not (self.runs_dir / f"{run_id}.json").is_file():
            raise Refused(404, "no such run")
        return Run(**json.loads((self.runs_dir / f"{run_id}.json").read_text()))

    # -- what the page shows ----------------------------------------------------------------------------
    def submission_states(self, run_id: str) -> dict[str, dict]:
        """Each submission's latest state in the run (from ``autograder grade --events``)."""
        states: dict[str, dict] = {}
        events = self.runs_dir / f"{run_id}.events"
        if events.is_file():
            for line in events.read_text(errors="replace").splitlines():
                try:
                    event = json.loads(line)
                    states[str(event["student"])] = {"state": str(event["state"]), "detail": str(event["detail"])}
                except (ValueError, KeyError, TypeError):
                    continue
        return states

    def run_view(self, run_id: str) -> dict:
        return {**asdict(self.load(run_id)), "submissions": self.submission_states(run_id)}

    def all_runs(self) -> list[dict]:
        """Every kept run, newest first, without its output."""
        found = sorted(self.runs_dir.glob("*.json"), reverse=True)
        return [{k: v for k, v in asdict(self.load(p.stem)).items() if k != "log"} for p in found]

    def runs(self, assignment: str | None = None) -> list[dict]:
        return [r for r in self.all_runs() if assignment is None or r["assignment"] == assignment][:RUNS_SHOWN]

    def overview(self) -> list[dict]:
        last: dict[str, dict] = {}
        for run in self.all_runs():  # read once, not once per assignment
            last.setdefault(run["assignment"], run)
        out = []
        for assignment in self.assignments():
            results = read_results(self.settings.course_dir, assignment)
            out.append({"name": assignment, "submitted": len(self.submitted(assignment)),
                        "graded": sum(1 for r in results.values() if r.get("status") == "graded"),
                        "gradable": assignment in hidden.assignments(), "running": self.busy.get(assignment),
                        "last": last.get(assignment)})
        return out

    def detail(self, assignment: str) -> dict:
        self.require(assignment)
        results = read_results(self.settings.course_dir, assignment)
        table = progress.class_progress(self.settings.course_dir)
        rows = {name: student["modules"][assignment] for name, student in table["students"].items()}
        students = []
        for name in sorted(set(self.submitted(assignment)) | set(results)):
            r, row = results.get(name, {}), rows.get(name, {})
            visible = r.get("visible") or []
            students.append({"name": name, "status": r.get("status", "not graded"),
                             "hidden": f"{r['score']:g}/{r['possible']:g}" if r.get("status") == "graded" else "",
                             "visible": f"{sum(t['passed'] for t in visible)}/{len(visible)} passed" if visible else "",
                             "message": str(r.get("message", ""))[:300], "graded_at": r.get("graded_at", ""),
                             "late_hours": row.get("late_hours", 0), "extension_hours": row.get("extension_hours", 0),
                             "penalty": row.get("penalty", 0), "total": row.get("total"), "max": row.get("max")})
        return {"name": assignment, "students": students, "runs": self.runs(assignment), "due": table["due"][assignment],
                "running": self.busy.get(assignment)}

    def extend(self, assignment: str, student: object, hours: object, by: str) -> dict:
        """Give ``student`` ``hours`` more for ``assignment``, then recompute its late penalties (or say when)."""
        self.require(assignment)
        if not isinstance(student, str) or not re.match(hub_config.USERNAME_PATTERN, student):
            raise Refused(400, f"{str(student)[:40]!r} is not a user name")
        try:
            late.grant_extension(self.settings.course_dir, assignment, student, float(str(hours)))
        except ValueError as error:
            raise Refused(400, f"the extension must be a number of hours: {error}") from None
        try:
            run = self.start("recompute", assignment, None, by)
        except Refused:  # graded right now: that run reads the extension when it records
            return {"message": f"extension saved; it applies when the run of {assignment} going on records"}
        return {"message": f"extension saved; late penalties of {assignment} recomputed in run {run.id}", "run": run.id}

    def progress(self, student: str | None = None) -> dict:
        table = progress.class_progress(self.settings.course_dir)
        if student is None:
            return table
        if student not in table["students"]:
            raise Refused(404, f"nothing recorded for {student[:40]!r} yet: fetch and submit an assignment first")
        return {**table, "students": {student: table["students"][student]}}

    def due_dates(self, student: str) -> dict:
        if not re.fullmatch(hub_config.USERNAME_PATTERN, student):
            raise Refused(400, f"{student[:40]!r} is not a user name")
        return progress.due_dates(self.settings.course_dir, student)

    def canvas_csv(self) -> Path:
        return self.settings.course_dir / "autograder" / "canvas_gradebook.csv"

    def otter_csv(self, assignment: str) -> Path:
        self.require(assignment)
        return results_dir(self.settings.course_dir, assignment) / "final_grades.csv"


# -- the Unix socket ------------------------------------------------------------------------------------
# (the web framework is tornado, which nbgrader's Jupyter server brings; pinned in pyproject's grader extra)

class Handler(web.RequestHandler):
    """The agent's HTTP face: JSON in and out; ``answer`` turns a Refused into its status and message."""

    @property
    def agent(self) -> Agent:
        return self.settings["agent"]

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        self.finish({"error": str(error) if isinstance(error, Refused) else self._reason})

    def answer(self, call, *args) -> None:
        try:
            self.finish(json.dumps(call(*args)))
        except Refused as refused:
            self.set_status(refused.status)
            self.finish({"error": str(refused)})

    def body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the request is not a JSON object")
        return body


class AssignmentsHandler(Handler):
    def get(self, name: str | None = None) -> None:
        self.answer(self.agent.detail, name) if name else self.answer(lambda: {"assignments": self.agent.overview()})


class RunsHandler(Handler):
    def get(self, run_id: str | None = None) -> None:
        self.answer(self.agent.run_view, run_id) if run_id else self.answer(lambda: {"runs": self.agent.runs()})

    def post(self) -> None:
        body = self.body()
        self.set_status(202)
        self.answer(lambda: asdict(self.agent.start(str(body.get("action")), str(body.get("assignment")),
                                                    body.get("student") or None, str(body.get("by", "?")))))


class ExtensionsHandler(Handler):
    def post(self) -> None:
        body = self.body()
        self.answer(self.agent.extend, str(body.get("assignment")), body.get("student"), body.get("hours"),
                    str(body.get("by", "?")))


class ProgressHandler(Handler):
    def get(self, student: str | None = None) -> None:
        self.answer(self.agent.progress, student)


class DueDatesHandler(Handler):
    def get(self, student: str) -> None:
        self.answer(self.agent.due_dates, student)


class ProgressCsvHandler(Handler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.finish(progress.progress_csv(self.agent.progress()))


class FilesHandler(Handler):
    def get(self, assignment: str | None = None) -> None:
        try:
            path = self.agent.otter_csv(assignment) if assignment else self.agent.canvas_csv()
        except Refused as refused:
            self.set_status(refused.status)
            self.finish({"error": str(refused)})
            return
        if not path.is_file():
            self.set_status(404)
            self.finish({"error": f"no CSV yet: grade {assignment or 'an assignment'} first"})
            return
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.finish(path.read_bytes())


def make_app(agent: Agent) -> web.Application:
    return web.Application([
        (r"/assignments", AssignmentsHandler), (r"/assignments/([^/]+)", AssignmentsHandler),
        (r"/runs", RunsHandler), (r"/runs/([^/]+)", RunsHandler), (r"/extensions", ExtensionsHandler),
        (r"/progress", ProgressHandler), (r"/progress\.csv", ProgressCsvHandler), (r"/progress/([^/]+)", ProgressHandler),
        (r"/due/([^/]+)", DueDatesHandler),
        (r"/files/canvas", FilesHandler), (r"/files/([^/]+)/otter", FilesHandler),
    ], agent=agent)


def serve(agent: Agent, socket_path: Path, owner: tuple[int, int]) -> None:
    """Listen on ``socket_path``, which only ``owner`` (uid, gid) may open, until killed."""
    import asyncio
    import os

    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_unix_socket

    async def main() -> None:
        sock = bind_unix_socket(str(socket_path), mode=0o600)
        os.chown(socket_path, *owner)
        server = HTTPServer(make_app(agent))
        server.add_socket(sock)
        print(f"grading agent: listening on {socket_path} for uid {owner[0]}; course {agent.settings.course_dir}",
              flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def main(argv: list[str]) -> int:
    """``autograder agent --config course.yml --course DIR --state DIR --socket PATH --hub-container NAME``."""
    import argparse

    parser = argparse.ArgumentParser(prog="autograder agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="the course config the hub reads")
    parser.add_argument("--course", type=Path, required=True, help="the course directory (its path on the host)")
    parser.add_argument("--state", type=Path, required=True, help="where runs are kept")
    parser.add_argument("--socket", type=Path, required=True, help="the Unix socket to listen on")
    parser.add_argument("--hub-container", required=True, help="the hub container (nbgrader collect runs there)")
    parser.add_argument("--grader-image", default=containers.DEFAULT_IMAGE, help="the grading containers' image")
    args = parser.parse_args(argv)
    cfg = hub_config.load_course_config(args.config)
    settings = Settings(course_dir=args.course.resolve(), state_dir=args.state, hub_container=args.hub_container,
                        course_in_hub=cfg["nbgrader"]["course_root"], grader=hub_config.grader_user(cfg),
                        grader_uid=cfg["nbgrader"]["grader_uid"], gid=cfg["spawner"]["gid"],
                        grader_image=args.grader_image)
    serve(Agent(settings), args.socket, (settings.grader_uid, settings.gid))
    return 0
