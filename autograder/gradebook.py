"""The nbgrader gradebook: the hidden tests' task cell and score, and the Canvas CSV made from it."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from autograder import hidden
from autograder.nbgrader_adapter import Course
from autograder.results import read_results, results_dir, write_atomic

HIDDEN_CELL = "hidden_tests"  # grade_id of the task cell that holds the hidden score in each notebook


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


def record_in_gradebook(course: Course, assignment: str, scores: dict[str, float]) -> list[str]:
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


def canvas_csv(course: Course, path: Path) -> Path:
    """A gradebook Canvas imports: Student, ID, SIS User ID, Section, one column per assignment.

    Each assignment's column is the nbgrader total (visible + written + hidden, when the hidden score
    is recorded in the gradebook) or, for a submission nbgrader does not know, the hidden score.
    ``ID`` is the student's ``lms_user_id`` in the gradebook (Canvas's user id), SIS User ID their id.
    """
    assignments = [a for a in course.assignments() if results_dir(course.root, a).is_dir()]
    with course.api.gradebook as gradebook:
        students = {s.id: s for s in gradebook.students}
        totals: dict[tuple[str, str], float | None] = {}
        for assignment in assignments:
            stored = read_results(course.root, assignment)
            try:
                submissions = {sub.student.id: sub for sub in gradebook.assignment_submissions(assignment)}
            except Exception:  # noqa: BLE001 - an assignment missing from the gradebook has no nbgrader scores
                submissions = {}
            for student in set(stored) | set(submissions):
                result = stored.get(student, {})
                hidden_score = result.get("score") if result.get("status") == "graded" else None
                totals[(student, assignment)] = submission_total(submissions.get(student), hidden_score)
        rows = []
        for student in sorted(set(students) | {s for s, _ in totals}):
            record = students.get(student)
            name = f"{record.last_name}, {record.first_name}" if record is not None and record.last_name else student
            rows.append([name, (record.lms_user_id or "") if record is not None else "", student, ""] +
                        ["" if totals.get((student, a)) is None else f"{totals[(student, a)]:g}" for a in assignments])
    possible = ["Points Possible", "", "", ""] + [f"{course_points(course, a):g}" for a in assignments]
    lines = [["Student", "ID", "SIS User ID", "Section"] + assignments, possible] + rows
    buffer = io.StringIO()
    csv.writer(buffer).writerows(lines)
    write_atomic(path, buffer.getvalue())
    return path


def submission_total(submission, hidden_score: float | None) -> float | None:
    """nbgrader's total of a submission (visible + written + hidden once recorded, less its late penalty), plus
    the hidden score the gradebook does not hold yet; for a submission nbgrader does not know, the hidden score."""
    if submission is None:
        return hidden_score
    in_book = any(g.cell.name == HIDDEN_CELL and g.score is not None for nb in submission.notebooks for g in nb.grades)
    late_penalty = float(submission.late_submission_penalty or 0)  # autograder/late.py
    return float(submission.score) - late_penalty + (0 if in_book or hidden_score is None else hidden_score)


def course_points(course: Course, assignment: str) -> float:
    """The assignment's possible points in nbgrader (which include the hidden-tests cell when present)."""
    try:
        with course.api.gradebook as gradebook:
            max_score = float(gradebook.find_assignment(assignment).max_score)
            has_cell = any(c.name == HIDDEN_CELL for nb in gradebook.find_assignment(assignment).notebooks
                           for c in nb.task_cells)
    except Exception:  # noqa: BLE001
        return hidden.points(assignment)
    return max_score if has_cell else max_score + hidden.points(assignment)
