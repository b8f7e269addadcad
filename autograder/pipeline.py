"""``autograder grade ASSIGNMENT``, step by step (``grade_assignment``):

1. open the course directory and check it matches this checkout (``open_course``);
2. collect: the exchange, or LMS zips (``gather``); unreadable submissions are reported and skipped;
3. plan: a submission graded before and unchanged is not graded again (``plan``);
4. grade every planned submission in its own hardened container, several at once (``run_containers``): on this
   host, or as Swarm jobs on the [graders] nodes when the classroom is a swarm (autograder/runners.py);
5. record: nbgrader's autograde (executing nothing), the hidden score in the gradebook, both CSVs (``record``);
6. feedback: nbgrader's pages with the hidden tests added, and release (``hand_back``).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from autograder import containers, hidden
from autograder.runners import Runner, runner_for
from autograder.coursedir import check_visible_tests
from autograder.feedback import write_feedback
from autograder.gradebook import canvas_csv, record_in_gradebook
from autograder.late import apply_late_penalties
from autograder.nbgrader_adapter import CANVAS_REGEXP, Course, GradeError
from autograder.results import final_grades_csv, read_results, results_dir, write_atomic


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


# progress(student, state, detail): "planned", "running", then "graded" (detail: the score) or "error" (detail:
# the message) as each container finishes; "skipped" and "unchanged" at planning. The grading page shows them.
Progress = Callable[[str, str, str], None]


def no_progress(student: str, state: str, detail: str) -> None:
    return None


@contextmanager
def one_batch_at_a_time(course_root: Path, assignment: str) -> Iterator[None]:
    """Hold the assignment's grading lock, or raise GradeError at once: two batches of one assignment (two TAs,
    the grading page and a script) would write the same results, gradebook rows and CSVs."""
    folder = results_dir(course_root, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".grading.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise GradeError(f"{assignment} is being graded right now ({holder}); wait for that run to "
                             "finish, then run this again") from None
        lock.truncate(0)
        lock.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)


@dataclass
class Planned:
    """One submission to grade in a container: who, what was graded (its digest), and the job."""
    student: str
    digest: str
    job: containers.Job


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


def visible_results(result: dict) -> dict | str:
    """What nbgrader's autograde writes into the test cells: per test, passed and message; or why there is none."""
    if result.get("status") != "graded":
        return result.get("message") or "the grading container failed"
    return {t["name"]: {"passed": t["passed"], "message": t["message"]} for t in result.get("visible", [])}


def open_course(course_root: Path, assignment: str, image: str, limits: containers.Limits) -> tuple[Course, Runner]:
    """The course directory and where its containers run, if ``assignment`` can be graded in it with ``image``;
    else GradeError saying why."""
    course = Course(course_root)
    course.require_assignment(assignment)
    if assignment not in hidden.assignments():
        raise GradeError(f"no hidden tests for {assignment} in {hidden.HIDDEN}; the modules with hidden tests "
                         f"are: {', '.join(hidden.assignments())}")
    check_visible_tests(course.root, assignment)
    try:
        runner = runner_for(image, limits)
    except containers.ContainerError as error:
        raise GradeError(str(error)) from None
    return course, runner


def gather(course: Course, assignment: str, zips: list[Path], zip_regexp: str, collect: bool,
           summary: Summary, log: Callable[[str], None]) -> list[str]:
    """Collect (exchange or zips); return every student with a submission in submitted/."""
    if zips:
        summary.problems += course.zip_collect(assignment, zips, zip_regexp)
    elif collect:
        log(f"{assignment}: {len(course.collect(assignment))} submission(s) collected from the exchange")
    return course.submitted_students(assignment)


def plan(course: Course, assignment: str, students: list[str], summary: Summary, force: bool,
         limits: containers.Limits, image: str, batch: str, progress: Progress = no_progress) -> list[Planned]:
    """Check each submission, and plan a container for each that is gradable and not graded unchanged before."""
    stored = read_results(course.root, assignment)
    planned = []
    for student in students:
        gradable, problems = course.check_submission(assignment, student)
        if not gradable:  # empty, notebook renamed: reported, not graded
            summary.skipped[student] = "; ".join(problems)
            progress(student, "skipped", summary.skipped[student])
            continue
        notebooks = student_notebooks(course.root, assignment, student)
        digest = submission_digest(notebooks)
        previous = stored.get(student)
        if (not force and previous and previous.get("status") == "graded" and previous.get("digest") == digest
                and previous.get("visible") is not None):
            summary.resumed.append(student)
            progress(student, "unchanged", "graded before; the submission has not changed")
            continue
        progress(student, "planned", "")
        planned.append(Planned(student, digest, containers.Job(assignment, notebooks, label=student, limits=limits,
                                                               image=image, batch=batch)))
    return planned


def worker_count(jobs: int | None, runner: Runner, planned: int) -> int:
    """Containers at once: as asked, else what fits where they run; never more than there is work."""
    return max(1, min(jobs or runner.slots, planned or 1))


def run_containers(root: Path, assignment: str, planned: list[Planned], runner: Runner, workers: int,
                   summary: Summary, bar: bool, progress: Progress = no_progress) -> None:
    """Grade each planned submission in its own container; each result is kept (atomically) as it arrives,
    so an interrupted batch resumes where it stopped."""
    out_dir, work_root = results_dir(root, assignment), root / "autograder" / ".work"
    tqdm_bar = None
    if bar:
        from tqdm import tqdm
        tqdm_bar = tqdm(total=len(planned), unit="submission", desc=assignment, file=sys.stderr)

    def grade(item: Planned) -> dict:
        progress(item.student, "running", "")
        return runner.grade(item.job, work_root)

    pool = ThreadPoolExecutor(workers)
    futures: dict[Future, Planned] = {pool.submit(grade, p): p for p in planned}
    try:
        for future in as_completed(futures):
            item = futures[future]
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - one broken job never stops the batch
                result = {"status": "error", "message": f"{type(error).__name__}: {error}"}
            result.update(student=item.student, digest=item.digest, graded_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            write_atomic(out_dir / f"{item.student}.json", json.dumps(result, indent=1) + "\n")
            if result.get("status") == "graded":
                summary.graded.append(item.student)
                progress(item.student, "graded", f"hidden tests {result['score']:g}/{result['possible']:g}")
            else:
                summary.errors[item.student] = result.get("message", "unknown error")
                progress(item.student, "error", summary.errors[item.student])
            if tqdm_bar is not None:
                tqdm_bar.update(1)
    except KeyboardInterrupt:
        for future in futures:
            future.cancel()
        runner.kill_running()  # the containers' grader processes ignore the terminal's Ctrl-C
        pool.shutdown(wait=True)
        raise GradeError(f"interrupted: {len(summary.graded)} result(s) of this run are kept in {out_dir}; "
                         "run the same command again to grade the rest") from None
    pool.shutdown(wait=True)
    if tqdm_bar is not None:
        tqdm_bar.close()
    shutil.rmtree(work_root, ignore_errors=True)


def record(course: Course, assignment: str, everyone: list[str], todo: list[str], summary: Summary) -> dict[str, dict]:
    """nbgrader's autograde, executing nothing: the gradebook rows and the container's visible results in the
    test cells of the autograded notebook (formgrader, feedback); the hidden score in its task cell; the CSVs.
    Returns each student's stored result."""
    root = course.root
    results = {s: r for s, r in read_results(root, assignment).items()  # a skipped submission's old
               if s in everyone and s not in summary.skipped}             # result is not its grade
    autograde = [s for s in todo if s in results
                 and (s not in summary.resumed or not (root / "autograded" / s / assignment).is_dir())]
    for outcome in course.autograde(assignment, {s: visible_results(results[s]) for s in autograde}):
        summary.notes[outcome.student] = [m for m in outcome.messages if not m.startswith("not graded: ")]
        if outcome.status != "graded":
            summary.errors.setdefault(outcome.student, "; ".join(outcome.messages))
    summary.visible = {s: v for s, v in course.scores(assignment).items() if s in everyone}
    graded = {s: r["score"] for s, r in results.items() if r.get("status") == "graded"}
    summary.problems += record_in_gradebook(course, assignment, graded)
    with course.api.gradebook as gradebook:  # after the hidden score: the penalty is a share of the autograded score
        for student, late in apply_late_penalties(gradebook, root, assignment, sorted(graded)).items():
            results[student]["late"] = late
    summary.outputs.append(final_grades_csv(results, results_dir(root, assignment) / "final_grades.csv"))
    summary.outputs.append(canvas_csv(course, root / "autograder" / "canvas_gradebook.csv"))
    return results


def hand_back(course: Course, assignment: str, results: dict[str, dict], summary: Summary, release: bool) -> None:
    """Each graded student's feedback page (nbgrader's, with the hidden tests added) and, ``release``, its release."""
    root = course.root
    graded = {s: r for s, r in results.items() if r.get("status") == "graded"}
    ready = [s for s in graded if (root / "autograded" / s / assignment).is_dir()]
    if ready:
        course.feedback(assignment, ready, release=False)
    for student, result in graded.items():
        write_feedback(root, assignment, student, result)
    if not release:
        return
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
        if not course.api.release_feedback(assignment, student)["success"]:
            summary.problems.append(f"{student}: nbgrader release_feedback failed")


def grade_assignment(course_root: Path, assignment: str, *, zips: list[Path] | tuple = (),
                     zip_regexp: str = CANVAS_REGEXP, collect: bool = True, students: list[str] | None = None,
                     force: bool = False, jobs: int | None = None, image: str = containers.DEFAULT_IMAGE,
                     limits: containers.Limits | None = None, feedback: bool = True, release_feedback: bool = False,
                     bar: bool = True, progress: Progress = no_progress,
                     log: Callable[[str], None] = print) -> Summary:
    """Grade ``assignment`` in the course directory ``course_root`` (the steps in this module's docstring),
    one batch of an assignment at a time. Raises GradeError when nothing can be graded; one submission's
    problem never stops the batch."""
    limits = limits or containers.Limits()
    course, runner = open_course(course_root, assignment, image, limits)
    with one_batch_at_a_time(course.root, assignment):
        return grade_batch(course, runner, assignment, list(zips), zip_regexp, collect, students, force, jobs, image,
                           limits, feedback, release_feedback, bar, progress, log)


def grade_batch(course: Course, runner: Runner, assignment: str, zips: list[Path], zip_regexp: str, collect: bool,
                students: list[str] | None, force: bool, jobs: int | None, image: str, limits: containers.Limits,
                feedback: bool, release_feedback: bool, bar: bool, progress: Progress,
                log: Callable[[str], None]) -> Summary:
    summary = Summary(assignment)
    everyone = gather(course, assignment, zips, zip_regexp, collect, summary, log)
    unknown = [s for s in students or [] if s not in everyone]
    if unknown:
        raise GradeError(f"no submission of {assignment} from {', '.join(unknown)} in {course.root / 'submitted'}")
    todo = students or everyone
    if not todo:
        log(f"{assignment}: no submissions in {course.root / 'submitted'}")
        return summary
    batch = f"{assignment}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    planned = plan(course, assignment, todo, summary, force, limits, image, batch, progress)
    if planned:
        workers = worker_count(jobs, runner, len(planned))
        log(f"{assignment}: grading {len(planned)} submission(s) as {runner.where}, {workers} at a time"
            + (f" ({len(summary.resumed)} already graded, unchanged)" if summary.resumed else "")
            + f"; batch {batch} (docker ps --filter label={containers.BATCH_LABEL}={batch})")
        run_containers(course.root, assignment, planned, runner, workers, summary, bar, progress)
    results = record(course, assignment, everyone, todo, summary)
    if feedback or release_feedback:
        hand_back(course, assignment, results, summary, release_feedback)
    return summary


def report(summary: Summary, course_root: Path, log: Callable[[str], None] = print) -> None:
    """One line per student: status, visible tests (the gradebook's score), hidden tests, what to know."""
    results = read_results(course_root, summary.assignment)
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
