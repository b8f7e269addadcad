"""``autograder grade ASSIGNMENT``: collect, grade every submission's hidden tests in its own hardened
container (in parallel, resumable), then write the gradebooks and the feedback."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import hidden, records, sandbox

# Canvas names each file of a "Download submissions" zip <lastfirst>_[late_]<user id>_<submission id>_<file name>,
# with "-1", "-2" appended to the file name on resubmission.  student_id is <lastfirst>.
CANVAS_REGEXP = r"^(?:.*/)?(?P<student_id>[a-z0-9]+)_(?:late_)?\d+_\d+_(?P<file_id>.+?)(?:-\d+)?\.ipynb$"


class PipelineError(Exception):
    """The assignment cannot be graded at all; the message says why and what to do."""


@dataclass
class Summary:
    assignment: str
    graded: list[str] = field(default_factory=list)     # graded in this run
    resumed: list[str] = field(default_factory=list)    # already graded, submission unchanged: skipped
    errors: dict[str, str] = field(default_factory=dict)  # could not be graded (re-run to retry)
    skipped: dict[str, str] = field(default_factory=dict)  # not gradable as submitted (empty, renamed): why
    notes: dict[str, list[str]] = field(default_factory=dict)  # what the TA should know about one student
    visible: dict[str, tuple[float, float]] = field(default_factory=dict)  # the gradebook's visible-test scores
    problems: list[str] = field(default_factory=list)   # everything else the TA should know
    outputs: list[Path] = field(default_factory=list)


def submission_digest(notebooks: dict[str, Path]) -> str:
    """What was graded: the bytes of every notebook the container saw."""
    digest = hashlib.sha256()
    for slug, path in sorted(notebooks.items()):
        digest.update(slug.encode() + b"\0" + (Path(path).read_bytes() if path and Path(path).is_file() else b"-"))
    return digest.hexdigest()


def student_notebooks(root: Path, assignment: str, student: str) -> dict[str, Path]:
    """The notebooks a job needs: this assignment's, and the student's earlier modules' when a milestone
    runs on the student's own code (``submitted/<student>/<NN_name>/<NN_name>.ipynb``)."""
    slugs = [assignment]
    if hidden.uses_own_stack(assignment):
        slugs = [p.name for p in sorted((root / "source").iterdir()) if p.is_dir() and p.name <= assignment]
    notebooks = {}
    for slug in slugs:
        path = root / "submitted" / student / slug / f"{slug}.ipynb"
        if path.is_file():
            notebooks[slug] = path
    return notebooks


def zip_collect(course, assignment: str, zips: list[Path], regexp: str) -> list[str]:
    """``nbgrader zip_collect``: LMS downloads -> submitted/<student>/<assignment>/; return the problems."""
    from course.build import nbgrader_env
    missing = [str(z) for z in zips if not Path(z).is_file()]
    if missing:
        raise PipelineError(f"{', '.join(missing)}: no such zip file")
    archive = course.root / "downloaded" / assignment / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    for z in zips:
        shutil.copy2(z, archive / Path(z).name)
    done = subprocess.run([sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force",
                           f"--FileNameCollectorPlugin.named_regexp={regexp}"],
                          cwd=course.root, env=nbgrader_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise PipelineError(f"nbgrader zip_collect {assignment} failed: {done.stderr.strip()[-500:]}")
    skipped = [line.split("provided: ", 1)[-1] for line in done.stderr.splitlines() if "Skipped submission" in line]
    counts = re.search(r"(\d+) files collected, (\d+) files skipped", done.stderr)
    if counts and int(counts.group(1)) == 0:
        raise PipelineError(f"nbgrader zip_collect found no submission in {', '.join(map(str, zips))}: the file names "
                            f"must match --zip-regexp ({regexp})" + (f"; e.g. {Path(skipped[0]).name}" if skipped else ""))
    return [f"zip_collect skipped {Path(s).name}: its name does not match --zip-regexp" for s in skipped]


def check_visible_tests(course, assignment: str) -> None:
    """The visible tests the grading container runs (``tinytorch/checks``, built from course/) must be the grade
    cells of the course directory's notebook, whose grades nbgrader records: same cells, same code, same points."""
    from course import build
    visible = hidden.visible_tests(assignment)
    folder = course.root / "source" / assignment
    module = build.Module(assignment[:2], assignment[3:], build.COURSE / assignment / f"{assignment}.py")
    try:
        notebooks = [nbformat.read(path, as_version=4) for path in sorted(folder.glob("*.ipynb"))]
        same = visible is not None and len(notebooks) == 1 and build.visible_tests(
            notebooks[0], module, build.export_target(notebooks[0], module)) == \
            (build.CHECKS / f"test_{assignment}.py").read_text()
    except (OSError, ValueError, build.CourseError):
        same = False
    if not same:
        raise PipelineError(f"the test cells of {folder} are not the visible tests the grader runs "
                            f"(tinytorch/checks/test_{assignment}.py, built from course/): the course directory was "
                            "built from another version of course/; rebuild it (python -m course.build nbgrader)")


def visible_results(result: dict) -> dict | str:
    """What nbgrader's autograde writes into the test cells: per test, passed and message; or why there is none."""
    if result.get("status") != "graded":
        return result.get("message") or "the grading container failed"
    return {t["name"]: {"passed": t["passed"], "message": t["message"]} for t in result.get("visible", [])}


def grade_assignment(course_root: Path, assignment: str, *, zips: list[Path] = (), zip_regexp: str = CANVAS_REGEXP,
                     collect: bool = True, students: list[str] | None = None,
                     force: bool = False, jobs: int | None = None, image: str = sandbox.DEFAULT_IMAGE,
                     limits: sandbox.Limits | None = None, feedback: bool = True, release_feedback: bool = False,
                     progress: bool = True, log=print) -> Summary:
    from course.grade import Course, GradeError
    try:
        course = Course(course_root)
        course.require_assignment(assignment)
    except GradeError as error:
        raise PipelineError(str(error)) from None
    if assignment not in hidden.assignments():
        raise PipelineError(f"no hidden tests for {assignment} in {hidden.HIDDEN}; the modules with hidden tests "
                            f"are: {', '.join(hidden.assignments())}")
    check_visible_tests(course, assignment)
    try:
        sandbox.preflight(image)
    except sandbox.SandboxError as error:
        raise PipelineError(str(error)) from None
    root, summary = course.root, Summary(assignment)
    # 1. collect
    if zips:
        summary.problems += zip_collect(course, assignment, list(zips), zip_regexp)
    elif collect:
        try:
            collected = course.collect(assignment)
        except GradeError as error:
            raise PipelineError(str(error)) from None
        log(f"{assignment}: {len(collected)} submission(s) collected from the exchange")
    everyone = course.submitted_students(assignment)
    if students:
        unknown = [s for s in students if s not in everyone]
        if unknown:
            raise PipelineError(f"no submission of {assignment} from {', '.join(unknown)} in {root / 'submitted'}")
    todo_students = students or everyone
    if not todo_students:
        log(f"{assignment}: no submissions in {root / 'submitted'}")
        return summary
    # 2. submissions nbgrader cannot grade (empty, notebook renamed) are reported and skipped
    for student in todo_students:
        gradable, problems = course.check_submission(assignment, student)
        if not gradable:
            summary.skipped[student] = "; ".join(problems)
    # 3. visible and hidden tests, one hardened container per submission, resumable
    out_dir = records.results_dir(root, assignment)
    stored = records.read_results(root, assignment)
    jobs_todo = []
    for student in [s for s in todo_students if s not in summary.skipped]:
        notebooks = student_notebooks(root, assignment, student)
        digest = submission_digest(notebooks)
        previous = stored.get(student)
        if (not force and previous and previous.get("status") == "graded" and previous.get("digest") == digest
                and previous.get("visible") is not None):
            summary.resumed.append(student)
            continue
        jobs_todo.append((student, digest, sandbox.Job(assignment, notebooks, label=student,
                                                        limits=limits or sandbox.Limits(), image=image)))
    memory_mb = (limits or sandbox.Limits()).memory_mb
    fits = max(1, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (memory_mb * 2**20) - 1)
    workers = max(1, min(jobs or min(os.cpu_count() or 1, fits), len(jobs_todo) or 1))  # cores, and what RAM holds
    if jobs_todo:
        log(f"{assignment}: grading {len(jobs_todo)} submission(s) in hardened containers, {workers} at a time"
            + (f" ({len(summary.resumed)} already graded, unchanged)" if summary.resumed else ""))
    bar = None
    if progress and jobs_todo:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs_todo), unit="submission", desc=assignment, file=sys.stderr)
    work_root = root / "autograder" / ".work"
    pool = ThreadPoolExecutor(workers)
    futures = {pool.submit(sandbox.grade_in_container, job, work_root): (student, digest)
               for student, digest, job in jobs_todo}
    try:
        for future in as_completed(futures):
            student, digest = futures[future]
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - one broken job never stops the batch
                result = {"status": "error", "message": f"{type(error).__name__}: {error}"}
            result.update(student=student, digest=digest, graded_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            records.write_atomic(out_dir / f"{student}.json", json.dumps(result, indent=1) + "\n")  # kept at once
            if result.get("status") == "graded":
                summary.graded.append(student)
            else:
                summary.errors[student] = result.get("message", "unknown error")
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt:
        for future in futures:
            future.cancel()
        sandbox.kill_running()  # the containers' grader processes ignore the terminal's Ctrl-C
        pool.shutdown(wait=True)
        raise PipelineError(f"interrupted: {len(summary.graded)} result(s) of this run are kept in {out_dir}; "
                            "run the same command again to grade the rest") from None
    pool.shutdown(wait=True)
    if bar is not None:
        bar.close()
    shutil.rmtree(work_root, ignore_errors=True)
    # 4. nbgrader's autograde, executing nothing: the gradebook rows, the container's visible results in the
    #    test cells of the autograded notebook (formgrader, feedback); the hidden score in its task cell
    results = {s: r for s, r in records.read_results(root, assignment).items()  # a skipped submission's old
               if s in everyone and s not in summary.skipped}                     # result is not its grade
    autograde = [s for s in todo_students if s in results
                 and (s not in summary.resumed or not (root / "autograded" / s / assignment).is_dir())]
    try:
        outcomes = course.autograde(assignment, {s: visible_results(results[s]) for s in autograde})
    except GradeError as error:
        raise PipelineError(str(error)) from None
    for outcome in outcomes:
        summary.notes[outcome.student] = [m for m in outcome.messages if not m.startswith("not graded: ")]
        if outcome.status != "graded":
            summary.errors.setdefault(outcome.student, "; ".join(outcome.messages))
    summary.visible = {s: v for s, v in course.scores(assignment).items() if s in everyone}
    graded = {s: r for s, r in results.items() if r.get("status") == "graded"}
    summary.problems += records.record_in_gradebook(course, assignment, {s: r["score"] for s, r in graded.items()})
    summary.outputs.append(records.final_grades_csv(results, out_dir / "final_grades.csv"))
    summary.outputs.append(records.canvas_csv(course, root / "autograder" / "canvas_gradebook.csv"))
    if feedback or release_feedback:
        ready = [s for s in graded if (root / "autograded" / s / assignment).is_dir()]
        if ready:
            course.feedback(assignment, ready, release=False)
        for student, result in graded.items():
            records.write_feedback(root, assignment, student, result)
        if release_feedback:
            not_ready = sorted(set(graded) - set(ready))
            if not_ready:
                summary.problems.append(f"feedback not released to {', '.join(not_ready)}: nbgrader has not "
                                        "autograded their submission")
            from_lms = [s for s in ready if not (root / "feedback" / s / assignment / "submission_secret.txt").is_file()]
            if from_lms:
                summary.problems.append(f"feedback of {', '.join(from_lms)} not released: not submitted through the "
                                        f"exchange (an LMS zip?); hand back {root / 'feedback'}/<student>/{assignment}/ "
                                        "through the LMS")
            for student in [s for s in ready if s not in from_lms]:
                result = course.api.release_feedback(assignment, student)
                if not result["success"]:
                    summary.problems.append(f"{student}: nbgrader release_feedback failed")
    return summary


def report(summary: Summary, course_root: Path, log=print) -> None:
    """One line per student: status, visible tests (the gradebook's score), hidden tests, what to know."""
    results = records.read_results(course_root, summary.assignment)
    students = sorted(set(results) | set(summary.skipped) | set(summary.visible))
    width = max([len(s) for s in students] + [7])
    log(f"  {'student':<{width}}  {'status':<7}  {'visible':>7}  {'hidden':>7}  (written answers: grade them in formgrader)")
    for student in students:
        result = results.get(student, {})
        notes = list(summary.notes.get(student, []))
        visible = "%g/%g" % summary.visible[student] if student in summary.visible else "-"
        if student in summary.skipped:
            status, hidden_score, notes = "skipped", "-", [summary.skipped[student]] + notes
        elif result.get("status") == "graded":
            status, hidden_score = "graded", f"{result['score']:g}/{result['possible']:g}"
            failed = [sum(1 for t in result.get(k, []) if not t["passed"]) for k in ("visible", "tests")]
            if any(failed):
                notes.insert(0, f"failed: {failed[0]} visible, {failed[1]} hidden test(s)")
        else:
            status, hidden_score = "ERROR", "-"
            notes.insert(0, summary.errors.get(student) or result.get("message", "not graded"))
        log(f"  {student:<{width}}  {status:<7}  {visible:>7}  {hidden_score:>7}  {'; '.join(notes)}".rstrip())
    for problem in summary.problems:
        log(f"note: {problem}")
    for path in summary.outputs:
        log(f"wrote {path}")
