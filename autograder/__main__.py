"""The TA's command: ``autograder grade ASSIGNMENT`` (also ``python -m autograder grade ASSIGNMENT``).

    autograder grade 02_tensor [--course DIR]              collect from the exchange, grade, export
    autograder grade 02_tensor --zip canvas.zip            ... from an LMS download (nbgrader zip_collect)
    autograder grade 02_tensor --force                     grade everything again (default: resume)
    autograder grade 02_tensor --release-feedback          ... and hand the feedback back
    autograder list                                        the modules with hidden tests and their points
    autograder course [DIR] [--config course.yml]          write the nbgrader course directory from course/
    autograder agent --config ... --course ... --socket ...  the grading agent behind the hub's grading page

Run it in the nbgrader course directory (or name it with --course). It collects (nbgrader collect,
or zip_collect for --zip), runs each submission's visible tests (the notebook's test cells) and
hidden tests in its own hardened container (see autograder/README.md), several at once, with a
progress bar; student code never runs on this host. Then nbgrader's autograde, which here executes
nothing, records the visible results in the gradebook and the autograded notebook (formgrader, where
the written answers are graded by hand), and it writes: autograder/<assignment>/<student>.json
(atomically; a re-run skips submissions graded before and unchanged),
autograder/<assignment>/final_grades.csv (Otter's, hidden tests), autograder/canvas_gradebook.csv
(Canvas import), the hidden-tests cell of the nbgrader gradebook, and each student's feedback page
(failed visible tests with their messages; hidden tests, messages and memory budgets, never test code).
Exit status: 0 all graded, 1 some submission could not be graded (re-run to retry) or was skipped
(empty, notebook renamed: the line says what to do), 2 nothing graded.

``autograder course`` writes the nbgrader course directory (autograder/coursedir.py): nbgrader_config.py
and source/ from course/ and the course config, then release/ and the gradebook with nbgrader.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import hub_config
from autograder import containers, coursedir, hidden, pipeline
from autograder.nbgrader_adapter import CANVAS_REGEXP, GradeError
from course.build.sources import CourseError, course_modules


def build_course(out_dir: Path | None, config: Path | None, force: bool) -> int:
    """``autograder course``: the nbgrader course directory, from course/ and the course config."""
    if out_dir is None and config is None:
        print("name the course directory (autograder course DIR) or give the course config whose "
              "nbgrader.course_root it is (--config FILE)", file=sys.stderr)
        return 2
    cfg = hub_config.load_course_config(config)
    root = (out_dir or Path(cfg["nbgrader"]["course_root"])).resolve()
    for path in coursedir.write_course_directory(root, cfg, str(config) if config else "the defaults", force=force):
        print(f"{'wrote' if path.exists() else 'removed'} {path}")
    print(f"{root}: {len(course_modules())} assignments in source/ and release/, course id {cfg['course_id']!r}, "
          f"exchange {cfg['nbgrader']['exchange_root']}")
    return 0


def event_writer(path: Path) -> pipeline.Progress:
    """``--events FILE``: one JSON line per submission's step, flushed at once (the grading agent reads it)."""
    lock = threading.Lock()

    def write(student: str, state: str, detail: str) -> None:
        line = json.dumps({"student": student, "state": state, "detail": detail, "at": time.time()})
        with lock, open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    return write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    grader = sub.add_parser("grade", help="grade an assignment (visible and hidden tests, in containers) and export the gradebooks")
    grader.add_argument("assignment", help="e.g. 02_tensor")
    grader.add_argument("--course", type=Path, default=Path.cwd(), help="the nbgrader course directory (default: here)")
    grader.add_argument("--zip", type=Path, action="append", default=[], help="an LMS download to zip_collect (repeatable)")
    grader.add_argument("--zip-regexp", default=CANVAS_REGEXP,
                       help="how file names in the zip name the student (nbgrader FileNameCollector.named_regexp; "
                            "default: Canvas's <lastfirst>_<id>_<id>_<file>)")
    grader.add_argument("--no-collect", action="store_true", help="grade what is in submitted/ already")
    grader.add_argument("--student", action="append", help="grade only this student (repeatable)")
    grader.add_argument("--force", action="store_true", help="grade again submissions graded before")
    grader.add_argument("--jobs", type=int, help="containers at once (default: the number of cores)")
    grader.add_argument("--image", default=containers.DEFAULT_IMAGE, help=f"the grader image (default {containers.DEFAULT_IMAGE})")
    grader.add_argument("--no-feedback", action="store_true", help="do not write feedback pages")
    grader.add_argument("--release-feedback", action="store_true", help="release the feedback to the students")
    grader.add_argument("--no-progress", action="store_true", help="no progress bar")
    grader.add_argument("--events", type=Path, help="append each submission's progress to this file, one JSON "
                                                   "line each (planned, running, graded, error, skipped)")
    sub.add_parser("list", help="the modules with hidden tests")
    course = sub.add_parser("course", help="write the nbgrader course directory (source/, release/, gradebook)")
    course.add_argument("out_dir", type=Path, nargs="?",
                        help="the course directory (default: nbgrader.course_root of the config)")
    course.add_argument("--config", type=Path, help="the course config the hub reads (hub_config.py owns its schema); "
                                                    "without it: the defaults")
    course.add_argument("--force", action="store_true", help="overwrite files edited since the last build")
    sub.add_parser("agent", help="the grading agent the hub's grading page talks to (autograder/agent.py)",
                   add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["agent"]:
        from autograder import agent
        return agent.main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "course":
        try:
            return build_course(args.out_dir, args.config, args.force)
        except (CourseError, GradeError, hub_config.CourseConfigError) as error:
            print(f"autograder: {error}", file=sys.stderr)
            return 2
    if args.command == "list":
        for assignment in hidden.assignments():
            print(f"{assignment}  {hidden.points(assignment):g} points  {', '.join(hidden.test_files(assignment))}")
        return 0
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return grade(args)


def grade(args: argparse.Namespace) -> int:
    """``autograder grade``: grade, report one line per student, and say what could not be graded."""
    try:
        summary = pipeline.grade_assignment(
            args.course, args.assignment, zips=args.zip, zip_regexp=args.zip_regexp, collect=not args.no_collect,
            students=args.student, force=args.force, jobs=args.jobs, image=args.image,
            feedback=not args.no_feedback, release_feedback=args.release_feedback, bar=not args.no_progress,
            progress=event_writer(args.events) if args.events else pipeline.no_progress)
    except GradeError as error:
        print(f"autograder: {error}", file=sys.stderr)
        return 2
    pipeline.report(summary, Path(args.course).resolve())
    for student, message in sorted(summary.errors.items()):
        print(f"autograder: {student} could not be graded: {message} (run the command again to retry)", file=sys.stderr)
    for student, message in sorted(summary.skipped.items()):
        print(f"autograder: {student} skipped: {message}", file=sys.stderr)
    return 1 if summary.errors or summary.skipped else 0

if __name__ == "__main__":
    sys.exit(main())
