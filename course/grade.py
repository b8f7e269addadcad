"""Collect and autograde an assignment with nbgrader, one submission at a time: ``python -m course.grade 02_tensor``.

    python -m course.grade ASSIGNMENT [--course DIR] [--student ID ...]
                           [--no-collect] [--feedback] [--release-feedback]

Run it in the course directory (the one ``python -m course.build nbgrader``
wrote) or name it with ``--course``.  It runs nbgrader's own steps:

1. ``collect``: the exchange's submissions of ASSIGNMENT into ``submitted/<student>/ASSIGNMENT/``;
2. a check of each submission: an empty submission or one whose notebook was
   renamed is reported and skipped (nbgrader's own message is misleading there);
   deleted grade cells are reported, and those cells score 0;
3. ``autograde`` of each submission on its own, so one bad submission never stops the batch;
4. with ``--feedback``, ``generate_feedback`` (HTML in ``feedback/``), and with
   ``--release-feedback`` also ``release_feedback`` to the exchange.

It prints one line per student and the gradebook's visible-test score, and exits
1 when any submission was skipped or failed (every other one is still graded).

The same steps are importable for the autograder (``Course(root).collect(...)``,
``.check_submission(...)``, ``.autograde(...)``, ``.feedback(...)``, ``.scores(...)``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from course.build import nbgrader_env

# nbgrader 0.9.6 with SQLAlchemy 2 warns on every autograde about objects "not in session"; harmless.
warnings.filterwarnings("ignore", message=".*not in session.*")


class GradeError(Exception):
    """The course or the assignment cannot be graded at all; the message says why."""


@dataclass
class Outcome:
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
    config.CourseDirectory.root = str(root)
    return config


class Course:
    """An nbgrader course directory, graded through nbgrader's Python API."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        if not (self.root / "nbgrader_config.py").is_file():
            raise GradeError(f"{self.root} has no nbgrader_config.py: it is not a course directory "
                             "(make one with `python -m course.build nbgrader DIR`)")
        os.environ["PATH"] = nbgrader_env()["PATH"]  # nbgrader runs `alembic` from PATH
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        config = _load_config(self.root)
        self.api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        self.course_id = self.api.coursedir.course_id

    # -- what the course holds --------------------------------------------------------------------

    def assignments(self) -> list[str]:
        source = self.root / "source"
        return sorted(p.name for p in source.iterdir() if p.is_dir()) if source.is_dir() else []

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
            expected[path.name] = [c["metadata"]["nbgrader"]["grade_id"] for c in cells
                                   if c["metadata"].get("nbgrader", {}).get("grade")
                                   and c["cell_type"] == "code"]
        return expected

    def submitted_students(self, assignment: str) -> list[str]:
        submitted = self.root / "submitted"
        if not submitted.is_dir():
            return []
        return sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())

    # -- the steps --------------------------------------------------------------------------------

    def collect(self, assignment: str) -> list[str]:
        """``nbgrader collect``: copy the exchange's submissions into submitted/; return who has one."""
        self.require_assignment(assignment)
        result = self.api.collect(assignment)
        if not result["success"]:
            raise GradeError(f"nbgrader collect {assignment} failed: {_last_error(result)}")
        return self.submitted_students(assignment)

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

    def autograde(self, assignment: str, students: list[str] | None = None) -> list[Outcome]:
        """Check and ``nbgrader autograde`` each submission on its own; a failure never stops the rest."""
        self.require_assignment(assignment)
        outcomes = []
        for student in students if students is not None else self.submitted_students(assignment):
            gradable, problems = self.check_submission(assignment, student)
            if not gradable:
                outcomes.append(Outcome(student, assignment, "skipped", messages=problems))
                continue
            result = self.api.autograde(assignment, student, force=True, create=True)
            if not result["success"]:
                outcomes.append(Outcome(student, assignment, "failed",
                                        messages=problems + [f"nbgrader autograde failed: {_last_error(result)}"]))
                continue
            score, max_score = self.scores(assignment).get(student, (None, None))
            outcomes.append(Outcome(student, assignment, "graded", score, max_score, problems))
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


def _last_error(result: dict) -> str:
    """The most useful line of nbgrader's captured log."""
    lines = [line for line in (result.get("log", "") + "\n" + (result.get("error") or "")).splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "Error" in line or "Exception" in line]
    return (errors or lines or ["(no output)"])[-1].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignment", help="e.g. 02_tensor")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="the course directory (default: here)")
    parser.add_argument("--student", action="append", help="grade only this student (repeatable)")
    parser.add_argument("--no-collect", action="store_true", help="grade what is in submitted/ already")
    parser.add_argument("--feedback", action="store_true", help="also write HTML feedback to feedback/")
    parser.add_argument("--release-feedback", action="store_true", help="write and release feedback to the exchange")
    args = parser.parse_args(argv)
    try:
        course = Course(args.course)
        course.require_assignment(args.assignment)
        if not args.no_collect:
            collected = course.collect(args.assignment)
            print(f"{args.assignment}: {len(collected)} submission(s) collected from the exchange")
        outcomes = course.autograde(args.assignment, args.student)
        if not outcomes:
            print(f"{args.assignment}: no submissions to grade in {course.root / 'submitted'}")
            return 0
        width = max(len("student"), *(len(o.student) for o in outcomes))
        print(f"  {'student':<{width}}  {'status':<7}  {'visible tests':>13}  (written answers: grade them in formgrader)")
        for o in outcomes:
            score = f"{o.score:g}/{o.max_score:g}" if o.score is not None else "-"
            print(f"  {o.student:<{width}}  {o.status:<7}  {score:>13}  {'; '.join(o.messages)}".rstrip())
        graded = [o.student for o in outcomes if o.status == "graded"]
        if (args.feedback or args.release_feedback) and graded:
            course.feedback(args.assignment, graded, release=args.release_feedback)
            print(f"feedback for {len(graded)} student(s) in {course.root / 'feedback'}"
                  + (" (released)" if args.release_feedback else ""))
    except GradeError as error:
        print(f"grade error: {error}", file=sys.stderr)
        return 2
    return 0 if all(o.status == "graded" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
