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


def grade_assignment(course_root: Path, assignment: str, *, zips: list[Path] = (), zip_regexp: str = CANVAS_REGEXP,
                     collect: bool = True, visible: bool = True, students: list[str] | None = None,
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
            course.collect(assignment)
        except GradeError as error:
            raise PipelineError(str(error)) from None
    everyone = course.submitted_students(assignment)
    if students:
        unknown = [s for s in students if s not in everyone]
        if unknown:
            raise PipelineError(f"no submission of {assignment} from {', '.join(unknown)} in {root / 'submitted'}")
    todo_students = students or everyone
    if not todo_students:
        log(f"{assignment}: no submissions in {root / 'submitted'}")
        return summary
    # 2. nbgrader's autograde of the visible tests (creates the gradebook's submission rows)
    if visible:
        pending = [s for s in todo_students if force or not (root / "autograded" / s / assignment).is_dir()]
        for outcome in course.autograde(assignment, pending) if pending else []:
            summary.problems += [f"{outcome.student}: {m}" for m in outcome.messages]
    # 3. hidden tests, one hardened container per submission, resumable
    out_dir = records.results_dir(root, assignment)
    stored = records.read_results(root, assignment)
    jobs_todo = []
    for student in todo_students:
        notebooks = student_notebooks(root, assignment, student)
        digest = submission_digest(notebooks)
        previous = stored.get(student)
        if not force and previous and previous.get("status") == "graded" and previous.get("digest") == digest:
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
    # 4. gradebooks and feedback
    results = {s: r for s, r in records.read_results(root, assignment).items() if s in everyone}
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
                                        "autograded their submission (run without --no-visible)")
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
    results = records.read_results(course_root, summary.assignment)
    width = max([len(s) for s in results] + [7])
    log(f"  {'student':<{width}}  hidden tests")
    for student, result in sorted(results.items()):
        if result.get("status") == "graded":
            failed = sum(1 for t in result["tests"] if not t["passed"])
            log(f"  {student:<{width}}  {result['score']:g}/{result['possible']:g}"
                + (f"  ({failed} failed)" if failed else ""))
        else:
            log(f"  {student:<{width}}  ERROR: {result.get('message', '')}")
    for problem in summary.problems:
        log(f"note: {problem}")
    for path in summary.outputs:
        log(f"wrote {path}")
