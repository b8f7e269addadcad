"""Where results go: one JSON per submission (atomic), Otter's final_grades.csv, a Canvas gradebook CSV,
the hidden-tests cell of the nbgrader gradebook, and the students' feedback."""
from __future__ import annotations

import csv
import html
import json
import os
import tempfile
from pathlib import Path

from autograder import hidden

HIDDEN_CELL = "hidden_tests"  # grade_id of the task cell that holds the hidden score in each notebook


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a crash) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
            # mkstemp makes 0600 files; these are the course's files like any other (feedback pages are
            # copied to the exchange with their mode, and students must be able to read their own)
            os.fchmod(f.fileno(), 0o644)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def results_dir(course_root: Path, assignment: str) -> Path:
    return Path(course_root) / "autograder" / assignment


def read_results(course_root: Path, assignment: str) -> dict[str, dict]:
    """Student -> their stored result for the assignment."""
    folder = results_dir(course_root, assignment)
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out[path.stem] = json.loads(path.read_text())
        except ValueError:
            continue  # never written by us half-way (atomic), but be tolerant of hand edits
    return out


# -- Otter's final_grades.csv ----------------------------------------------------------------------

def final_grades_csv(results: dict[str, dict], path: Path) -> Path:
    """Otter's own ``final_grades.csv`` (``otter.grade.utils.merge_scores_to_df``), one row per submission."""
    from otter.grade.utils import merge_scores_to_df
    from otter.test_files import GradingResults

    scores = []
    for student, result in sorted(results.items()):
        if result.get("status") == "graded":
            grading = GradingResults.from_ottr_json(json.dumps(result["otter"]))
        else:
            grading = GradingResults.without_results(RuntimeError(result.get("message", "not graded")))
        grading.file = student
        scores.append(grading)
    if not scores:
        return path
    frame = merge_scores_to_df(scores)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, frame.to_csv(index=False))
    return path


# -- the nbgrader gradebook ------------------------------------------------------------------------

def task_cell(assignment: str) -> dict:
    """The markdown task cell that carries the hidden-test score in a module's notebook (nbformat dict).

    The course build adds it to each source notebook whose module has hidden tests; formgrader then
    shows the hidden score next to the visible and manual grades, and `nbgrader export` includes it.
    """
    points = hidden.points(assignment)
    return {"cell_type": "markdown", "id": f"{assignment}-hidden-tests", "metadata": {"nbgrader": {
        "grade": False, "grade_id": HIDDEN_CELL, "locked": True, "points": points, "schema_version": 3,
        "solution": False, "task": True}},
        "source": f"## Hidden tests ({points:g} points)\n\nAfter the deadline the autograder runs hidden tests on "
                  "the code you export from this notebook: correctness on new inputs, memory budgets and, "
                  "where the module has one, a milestone on your own tinytorch. Your feedback lists them."}


def record_in_gradebook(course, assignment: str, scores: dict[str, float]) -> list[str]:
    """Write each student's hidden score into the notebook's hidden-tests task cell; return the problems."""
    from nbgrader.api import MissingEntry

    problems = []
    notebooks = list(course.expected_notebooks(assignment))
    with course.api.gradebook as gradebook:
        for student, score in scores.items():
            recorded = False
            for notebook in notebooks:
                name = notebook[:-len(".ipynb")]
                try:
                    grade = gradebook.find_grade(HIDDEN_CELL, name, assignment, student)
                except MissingEntry:
                    continue
                grade.manual_score = score
                grade.needs_manual_grade = False
                recorded = True
            if not recorded:
                problems.append(f"{student}: no '{HIDDEN_CELL}' cell in the gradebook for this submission (the course "
                                "was built without the hidden-tests cell, or nbgrader never autograded it): "
                                "the hidden score is only in the autograder's CSVs")
        gradebook.db.commit()
    return problems


def canvas_csv(course, path: Path) -> Path:
    """A gradebook Canvas imports: Student, ID, SIS User ID, Section, one column per assignment.

    Each assignment's column is the nbgrader total (visible + written + hidden, when the hidden score
    is recorded in the gradebook) or, for a submission nbgrader does not know, the hidden score.
    ``ID`` is the student's ``lms_user_id`` in the gradebook (Canvas's user id), SIS User ID their id.
    """
    assignments = [a for a in course.assignments() if results_dir(course.root, a).is_dir()]
    with course.api.gradebook as gradebook:
        students = {s.id: s for s in gradebook.students}
        totals = {}
        for assignment in assignments:
            stored = read_results(course.root, assignment)
            try:
                submissions = {sub.student.id: sub for sub in gradebook.assignment_submissions(assignment)}
            except Exception:  # noqa: BLE001 - an assignment missing from the gradebook has no nbgrader scores
                submissions = {}
            for student in set(stored) | set(submissions):
                hidden_score = stored.get(student, {}).get("score") if stored.get(student, {}).get("status") == "graded" else None
                sub = submissions.get(student)
                if sub is not None:
                    in_book = any(g.cell.name == HIDDEN_CELL and g.score is not None for nb in sub.notebooks for g in nb.grades)
                    value = float(sub.score) + (0 if in_book or hidden_score is None else hidden_score)
                else:
                    value = hidden_score
                totals[(student, assignment)] = value
        rows = []
        for student in sorted(set(students) | {s for s, _ in totals}):
            record = students.get(student)
            name = f"{record.last_name}, {record.first_name}" if record is not None and record.last_name else student
            rows.append([name, (record.lms_user_id or "") if record is not None else "", student, ""] +
                        ["" if totals.get((student, a)) is None else f"{totals[(student, a)]:g}" for a in assignments])
    possible = ["Points Possible", "", "", ""] + [f"{course_points(course, a):g}" for a in assignments]
    lines = [["Student", "ID", "SIS User ID", "Section"] + assignments, possible] + rows
    import io
    buffer = io.StringIO()
    csv.writer(buffer).writerows(lines)
    write_atomic(path, buffer.getvalue())
    return path


def course_points(course, assignment: str) -> float:
    """The assignment's possible points in nbgrader (which include the hidden-tests cell when present)."""
    try:
        with course.api.gradebook as gradebook:
            max_score = float(gradebook.find_assignment(assignment).max_score)
            has_cell = any(c.name == HIDDEN_CELL for nb in gradebook.find_assignment(assignment).notebooks
                           for c in nb.task_cells)
    except Exception:  # noqa: BLE001
        return hidden.points(assignment)
    return max_score if has_cell else max_score + hidden.points(assignment)


# -- feedback --------------------------------------------------------------------------------------

def feedback_html(result: dict) -> str:
    """The hidden tests' part of a student's feedback: each test, what it checks, its points, the message
    and notes (memory budget and peak). Never the test's code."""
    esc = html.escape
    if result.get("status") != "graded":
        return ("<section id='hidden-tests'><h2>Hidden tests</h2><p>Your submission could not be graded "
                "automatically; your TA has been told.</p></section>")
    rows = []
    for test in result["tests"]:
        mark = "passed" if test["passed"] else "failed"
        detail = "" if test["passed"] else f"<div class='message'>{esc(test['message'])}</div>"
        notes = "".join(f"<div class='note'>{esc(n)}</div>" for n in test.get("notes", []))
        rows.append(f"<tr class='{mark}'><td>{esc(test['kind'])}</td><td>{esc(test.get('checks') or test['name'])}"
                    f"{detail}{notes}</td><td>{test['score']:g} / {test['points']:g}</td><td>{mark}</td></tr>")
    problems = "".join(f"<p class='problem'>{esc(p)}</p>" for p in result.get("problems", []))
    return (f"<section id='hidden-tests'><h2>Hidden tests: {result['score']:g} / {result['possible']:g}</h2>{problems}"
            "<table><tr><th>kind</th><th>what it checks</th><th>points</th><th></th></tr>"
            + "".join(rows) + "</table></section>")


def write_feedback(course_root: Path, assignment: str, student: str, result: dict) -> Path:
    """Add the hidden tests to the student's nbgrader feedback page (or write one), so release_feedback hands
    it back; the notebook's page is ``feedback/<student>/<assignment>/<assignment>.html``."""
    folder = Path(course_root) / "feedback" / student / assignment
    page = folder / f"{assignment}.html"
    section = feedback_html(result)
    if page.is_file():
        text = page.read_text(encoding="utf-8")
        start = text.find("<section id='hidden-tests'>")
        if start >= 0:  # graded again: replace our section
            end = text.find("</section>", start) + len("</section>")
            text = text[:start] + section + text[end:]
        elif "</body>" in text:
            text = text.replace("</body>", section + "\n</body>", 1)
        else:
            text += section
    else:
        text = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{assignment}</title></head><body>{section}</body></html>"
    write_atomic(page, text)
    return page
