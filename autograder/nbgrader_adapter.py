"""nbgrader's side of grading, which never runs student code: ``Course(root)``.

Student code runs only inside the hardened grading containers of ``autograder grade`` (see
autograder/README.md): they run each notebook's visible tests (its grade cells) and the hidden tests.
This module is the nbgrader layer the autograder builds on:

1. ``collect`` (the exchange) or ``zip_collect`` (an LMS download): submissions into
   ``submitted/<student>/ASSIGNMENT/``;
2. ``check_submission``: an empty submission or one whose notebook was renamed is reported and
   skipped (nbgrader's own message is misleading there); deleted grade cells are reported (they score 0);
3. ``autograde``: nbgrader's autograde of each submission on its own, WITHOUT executing it (nbgrader's
   ``Execute`` preprocessor is replaced by ``GraderResults``, which writes the grading container's
   result of each visible test into its grade cell: an error output for a failed test, so nbgrader
   scores it 0 and formgrader and the feedback show the message). It makes the gradebook rows and
   the autograded notebook formgrader needs for the written answers. A submission without a
   container result scores 0 on every test, never nbgrader's full marks for a cell without output;
4. ``feedback``: ``generate_feedback`` (HTML in ``feedback/``) and ``release_feedback``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict, Unicode

from autograder.lms_zips import SKIPPED_LOG, SafeExtractor, stage_downloads
from course.build.sources import is_test_cell, test_name
from hub_config import sqlite_gradebook_url

# nbgrader 0.9.6 with SQLAlchemy 2 warns on every autograde about objects "not in session"; harmless.
warnings.filterwarnings("ignore", message=".*not in session.*")


# Canvas names each file of a "Download submissions" zip <lastfirst>_[late_]<user id>_<submission id>_<file name>,
# with "-1", "-2" appended to the file name on resubmission.  student_id is <lastfirst>.
CANVAS_REGEXP = r"^(?:.*/)?(?P<student_id>[a-z0-9]+)_(?:late_)?\d+_\d+_(?P<file_id>.+?)(?:-\d+)?\.ipynb$"


def source_assignments(root: Path) -> list[str]:
    """The assignments of a course directory: its folders in source/ (read without loading nbgrader)."""
    source = Path(root) / "source"
    return sorted(p.name for p in source.iterdir() if p.is_dir()) if source.is_dir() else []


def submitted_students(root: Path, assignment: str) -> list[str]:
    """Who has a collected submission of ``assignment``: ``submitted/<student>/<assignment>/``."""
    submitted = Path(root) / "submitted"
    if not submitted.is_dir():
        return []
    return sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())


class GradeError(Exception):
    """The course or the assignment cannot be graded at all; the message says why."""


def nbgrader_env() -> dict[str, str]:
    """nbgrader runs `alembic` from PATH: put this interpreter's scripts first."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}


def run_nbgrader(args: list[str], root: Path) -> subprocess.CompletedProcess:
    """A ``nbgrader`` command in the course directory ``root``, as a TA would type it."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=nbgrader_env(),
                          capture_output=True, text=True)


@dataclass
class SubmissionOutcome:
    """What happened to one student's submission."""
    student: str
    assignment: str
    status: str                  # "graded", "skipped" (not autograded) or "failed" (nbgrader failed)
    score: float | None = None   # points on the visible (autograded) tests
    max_score: float | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "graded" and not self.messages


def _load_config(root: Path):
    """The nbgrader config a `nbgrader` command run in ``root`` would see: site-wide files, then the course's."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    for folder in [*reversed(jupyter_config_path()), str(root)]:
        if Path(folder, "nbgrader_config.py").is_file():
            config.merge(PyFileConfigLoader("nbgrader_config.py", path=folder).load_config())
    # The course directory is where it is now: the hub container mounts the deployed one elsewhere,
    # and its nbgrader_config.py names the paths the hub sees. A sqlite gradebook lives in it by construction;
    # a PostgreSQL one (hub_config.gradebook_url) has the same URL everywhere and is kept as it is.
    config.CourseDirectory.root = str(root)
    if not str(config.CourseDirectory.get("db_url", "sqlite:")).startswith("postgresql"):
        config.CourseDirectory.db_url = sqlite_gradebook_url(root)
    return config


def course_gradebook_url(root: Path | str) -> str:
    """The gradebook a course directory's nbgrader commands open (a sqlite file in it, or PostgreSQL)."""
    return str(_load_config(Path(root).resolve()).CourseDirectory.db_url)


class Course:
    """An nbgrader course directory, graded through nbgrader's Python API."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        if not (self.root / "nbgrader_config.py").is_file():
            raise GradeError(f"{self.root} has no nbgrader_config.py: it is not a course directory "
                             "(make one with `autograder course DIR`)")
        os.environ["PATH"] = nbgrader_env()["PATH"]  # nbgrader runs `alembic` from PATH
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        config = _load_config(self.root)
        self.api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        self.course_id = self.api.coursedir.course_id

    # -- what the course holds --------------------------------------------------------------------

    def assignments(self) -> list[str]:
        return source_assignments(self.root)

    def require_assignment(self, assignment: str) -> None:
        known = self.assignments()
        if assignment not in known:
            raise GradeError(f"no assignment {assignment!r} in {self.root / 'source'}; "
                             f"the assignments are: {', '.join(known) or '(none)'}")

    def expected_notebooks(self, assignment: str) -> dict[str, list[str]]:
        """Notebook file name -> the grade ids of its autograded test cells, from source/."""
        expected = {}
        for path in sorted((self.root / "source" / assignment).glob("*.ipynb")):
            cells = json.loads(path.read_text())["cells"]
            expected[path.name] = [c["metadata"]["nbgrader"]["grade_id"] for c in cells if is_test_cell(c)]
        return expected

    def submitted_students(self, assignment: str) -> list[str]:
        return submitted_students(self.root, assignment)

    # -- the steps --------------------------------------------------------------------------------

    def collect(self, assignment: str) -> list[str]:
        """``nbgrader collect``: copy the exchange's submissions into submitted/; return who has one."""
        self.require_assignment(assignment)
        result = self.api.collect(assignment)
        if not result["success"]:
            raise GradeError(f"nbgrader collect {assignment} failed: {_last_error(result)}")
        return self.submitted_students(assignment)

    def zip_collect(self, assignment: str, zips: list[Path], regexp: str = CANVAS_REGEXP) -> list[str]:
        """``nbgrader zip_collect``: LMS downloads -> submitted/<student>/<assignment>/; return the problems.
        The downloads are opened as hostile archives (autograder/lms_zips.py): a bad file or member is
        reported and skipped, the rest collected."""
        self.require_assignment(assignment)
        missing = [str(z) for z in zips if not Path(z).is_file()]
        if missing:
            raise GradeError(f"{', '.join(missing)}: no such zip file")
        downloaded = self.root / "downloaded" / assignment
        stage_downloads(zips, downloaded / "archive")
        done = run_nbgrader(["zip_collect", assignment, "--force",
                             f"--ZipCollectApp.extractor_plugin={SafeExtractor.__module__}.{SafeExtractor.__name__}",
                             f"--FileNameCollectorPlugin.named_regexp={regexp}"], self.root)
        if done.returncode != 0:
            raise GradeError(f"nbgrader zip_collect {assignment} failed: {done.stderr.strip()[-500:]}")
        skipped = [line.split("provided: ", 1)[-1] for line in done.stderr.splitlines() if "Skipped submission" in line]
        counts = re.search(r"(\d+) files collected, (\d+) files skipped", done.stderr)
        if counts and int(counts.group(1)) == 0:
            raise GradeError(f"nbgrader zip_collect found no submission in {', '.join(map(str, zips))}: the file names "
                             f"must match --zip-regexp ({regexp})" + (f"; e.g. {Path(skipped[0]).name}" if skipped else ""))
        unpacked = downloaded / "extracted" / SKIPPED_LOG
        refused = json.loads(unpacked.read_text()) if unpacked.is_file() else []
        return [f"not collected: {why}" for why in refused] + \
            [f"zip_collect skipped {Path(s).name}: its name does not match --zip-regexp" for s in skipped]

    def check_submission(self, assignment: str, student: str) -> tuple[bool, list[str]]:
        """(gradable, problems) for one collected submission, before nbgrader sees it."""
        folder = self.root / "submitted" / student / assignment
        if not folder.is_dir():
            return False, [f"no submission collected (expected {folder})"]
        expected = self.expected_notebooks(assignment)
        found = sorted(p.name for p in folder.glob("*.ipynb"))
        missing = [name for name in expected if name not in found]
        if not found:
            return False, [f"empty submission: no notebook in {folder} (expected {', '.join(expected)}); "
                           "ask the student to submit again"]
        if missing:
            extra = [name for name in found if name not in expected]
            return False, [f"{', '.join(missing)} is missing; the submission has {', '.join(extra)} "
                           f"(renamed?): rename it to {missing[0]} in {folder} and grade again, "
                           "or ask the student to submit again"]
        problems = []
        for name, grade_ids in expected.items():
            try:
                cells = json.loads((folder / name).read_text())["cells"]
            except (ValueError, KeyError, TypeError) as error:
                return False, [f"{name} is not a readable notebook ({error}); ask the student to submit again"]
            present = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells}
            deleted = [g for g in grade_ids if g not in present]
            if deleted and len(deleted) == len(grade_ids):
                problems.append(f"{name} has none of the assignment's test cells (another assignment's "
                                "notebook?): it scores 0")
            elif deleted:
                problems.append(f"{name}: test cell(s) {', '.join(deleted)} were deleted: they score 0")
        return True, problems

    def autograde(self, assignment: str, results: dict[str, dict | str]) -> list[SubmissionOutcome]:
        """Check and ``nbgrader autograde`` each student's submission on its own, executing nothing.

        ``results[student]`` is what the grading container returned for their visible tests: test function
        name (``test_<grade_id>``, as in ``tinytorch/checks``) -> ``{"passed": bool, "message": str}``; or a
        string saying why the container could not grade the submission (every test then scores 0).
        A failure never stops the rest of the batch.
        """
        self.require_assignment(assignment)
        outcomes = []
        for student, visible in results.items():
            gradable, problems = self.check_submission(assignment, student)
            if not gradable:
                outcomes.append(SubmissionOutcome(student, assignment, "skipped", messages=problems))
                continue
            if isinstance(visible, str):
                problems.append(f"not graded: {visible}; its visible tests score 0 until it is")
            self.api.config.merge(no_execution(visible))
            result = self.api.autograde(assignment, student, force=True, create=True)
            if not result["success"]:
                outcomes.append(SubmissionOutcome(student, assignment, "failed",
                                        messages=problems + [f"nbgrader autograde failed: {_last_error(result)}"]))
                continue
            score, max_score = self.scores(assignment).get(student, (None, None))
            outcomes.append(SubmissionOutcome(student, assignment, "graded", score, max_score, problems))
        return outcomes

    def feedback(self, assignment: str, students: list[str], release: bool = False) -> dict[str, list[Path]]:
        """``nbgrader generate_feedback`` (and ``release_feedback``) for autograded students."""
        written = {}
        for student in students:
            result = self.api.generate_feedback(assignment, student)
            if not result["success"]:
                raise GradeError(f"nbgrader generate_feedback {assignment} for {student} failed: {_last_error(result)}")
            if release:
                result = self.api.release_feedback(assignment, student)
                if not result["success"]:
                    raise GradeError(f"nbgrader release_feedback {assignment} for {student} failed: "
                                     f"{_last_error(result)}")
            written[student] = sorted((self.root / "feedback" / student / assignment).glob("*.html"))
        return written

    def scores(self, assignment: str) -> dict[str, tuple[float, float]]:
        """Student -> (points, possible points) on the autograded tests, from the gradebook."""
        with self.api.gradebook as gradebook:
            return {sub.student.id: (float(sub.code_score), float(sub.max_code_score))
                    for sub in gradebook.assignment_submissions(assignment)}


class GraderResults(NbGraderPreprocessor):
    """In nbgrader's autograde, in place of ``Execute``: each visible test cell gets, as its output, the
    result the grading container sent for it. A passed test prints that it passed; a failed test,
    or one without a result, gets an error output with the message, which nbgrader scores 0 (a code
    grade cell without an error scores full marks, so "no result" must never mean "no output")."""

    results = Dict(help="test function name -> {'passed': bool, 'message': str}, from the grading container").tag(config=True)
    not_graded = Unicode("", help="why the grading container has no result for this submission").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            result = self.results.get(test_name(cell.metadata["nbgrader"].get("grade_id", "")))
            if self.not_graded:
                cell.outputs = [_error_output("NotGraded", f"the grading container could not run the tests: "
                                                           f"{self.not_graded}")]
            elif not isinstance(result, dict):
                cell.outputs = [_error_output("NotGraded", "the grading container sent no result for this test")]
            elif result.get("passed") is True:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                       text="passed (run on your exported code by the autograder)\n")]
            else:
                message = str(result.get("message") or "failed")
                ename, _, evalue = message.partition(": ")  # "AssertionError: ...", else the whole message
                cell.outputs = [_error_output(ename, evalue) if ename.isidentifier() and evalue
                                else _error_output("TestFailed", message)]
            cell.execution_count = None
        return cell, resources


def _error_output(ename: str, evalue: str):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def no_execution(visible: dict | str):
    """The nbgrader settings of one autograde: nothing executed, the container's results instead.

    nbgrader 0.9.6 (nbgrader/converters/autograde.py) runs ``Autograde.autograde_preprocessors``, ``Execute``
    first, after its sanitizing steps (which clear every output); nbconvert's ``Preprocessor.__call__`` skips a
    preprocessor whose ``enabled`` is False. tests/test_nbgrader.py checks that no cell runs.
    """
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute
    from traitlets.config import Config

    default = list(Autograde.class_traits()["autograde_preprocessors"].default())
    if Execute not in default:  # another nbgrader: check what replaces execution before trusting it
        raise GradeError(f"nbgrader's autograde steps changed ({[p.__name__ for p in default]}): "
                         "autograder/nbgrader_adapter.py must be checked against this nbgrader version")
    config = Config()
    config.Autograde.autograde_preprocessors = [GraderResults if p is Execute else p for p in default]
    config.Execute.enabled = False          # belt and braces: should a site config list it again
    config.SaveAutoGrades.enabled = True    # the course's nbgrader_config.py turns it off for everyone else
    config.GraderResults.results = visible if isinstance(visible, dict) else {}
    config.GraderResults.not_graded = visible if isinstance(visible, str) else ""
    return config


def _last_error(result: dict) -> str:
    """The most useful line of nbgrader's captured log."""
    lines = [line for line in (result.get("log", "") + "\n" + (result.get("error") or "")).splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "Error" in line or "Exception" in line]
    return (errors or lines or ["(no output)"])[-1].strip()
