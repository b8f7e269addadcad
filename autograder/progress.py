"""Where every student stands: each module's scores, lateness and feedback, and the milestones passed.

Read from the course directory only (nbgrader's gradebook and the autograder's results); the hub's progress
page shows a student their own row and TAs the whole class (autograder/agent.py serves it).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from autograder.gradebook import HIDDEN_CELL
from autograder.late import read_extensions
from autograder.nbgrader_adapter import Course
from autograder.results import read_results

MILESTONES = {"08_training": "XOR", "11_adam": "MNIST CNN", "15_generation": "TinyGPT"}


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""


def module_row(submission, result: dict, due, extension_hours: float) -> dict:
    """One student's one module: what the progress page shows."""
    row: dict[str, Any] = {"due": _when(due), "extension_hours": extension_hours, "submitted": "", "late_hours": 0.0,
           "visible": None, "hidden": None, "written": None, "penalty": 0.0, "total": None, "max": None,
           "status": "not submitted"}
    if result.get("status") == "graded":
        row.update(hidden=result["score"], status="graded")
    elif result:
        row["status"] = "could not be graded"
    if submission is None:
        return row
    grades = [g for nb in submission.notebooks for g in nb.grades]
    written = [g for g in grades if g.cell.cell_type == "markdown" and g.cell.name != HIDDEN_CELL]
    row.update(submitted=_when(submission.timestamp), late_hours=round(float(submission.total_seconds_late or 0) / 3600, 2),
               visible=float(submission.code_score), penalty=float(submission.late_submission_penalty or 0),
               written=sum(g.score or 0 for g in written) if written and not any(g.needs_manual_grade for g in written)
               else None,
               total=float(submission.score) - float(submission.late_submission_penalty or 0),
               max=float(submission.max_score),
               status=row["status"] if row["status"] != "not submitted" else "submitted")
    if written and any(g.needs_manual_grade for g in written):
        row["status"] += ", written answers not graded yet"
    return row


def milestones(results: dict[str, dict]) -> dict[str, dict]:
    """Assignment -> the student's milestone results: passed, and the figures the hidden test noted."""
    out = {}
    for assignment, name in MILESTONES.items():
        tests = [t for t in results.get(assignment, {}).get("tests", []) if t.get("kind") == "milestone"]
        if tests:
            out[name] = {"passed": all(t["passed"] for t in tests),
                         "figures": "; ".join(n for t in tests for n in t.get("notes", []))[:300]}
    return out


def class_progress(course_root: Path) -> dict:
    """Every student the gradebook or the results know, with every module."""
    course = Course(course_root)
    assignments = course.assignments()
    results = {a: read_results(course.root, a) for a in assignments}
    extensions = read_extensions(course.root)
    students: dict[str, dict] = {}
    with course.api.gradebook as gradebook:
        names = {s.id for s in gradebook.students} | {s for r in results.values() for s in r}
        due = {a.name: a.duedate for a in gradebook.assignments}
        submissions = {(sub.student.id, a): sub for a in assignments if a in due
                       for sub in gradebook.assignment_submissions(a)}
        for name in sorted(names):
            own = {a: results[a].get(name, {}) for a in assignments}
            students[name] = {
                "modules": {a: module_row(submissions.get((name, a)), own[a], due.get(a),
                                          extensions.get(a, {}).get(name, 0)) for a in assignments},
                "milestones": milestones(own)}
    return {"assignments": assignments, "students": students, "due": {a: _when(due.get(a)) for a in assignments}}


def due_dates(course_root: Path, student: str) -> dict:
    """What a student's Assignment List shows: each assignment's due date in the gradebook ("" for none; TAs
    change them in the formgrader) and the student's own extensions, in hours."""
    course = Course(course_root)
    with course.api.gradebook as gradebook:
        due = {a.name: _when(a.duedate) for a in gradebook.assignments}
    given = {a: hours[student] for a, hours in read_extensions(course.root).items() if student in hours}
    return {"due": due, "extension_hours": given}


def progress_csv(progress: dict) -> str:
    """The class table for a spreadsheet: one row per student, total and late penalty per module, milestones."""
    assignments = progress["assignments"]
    header = ["student"] + [f"{a} {part}" for a in assignments for part in ("total", "late penalty")] + list(MILESTONES.values())
    rows = [header]
    for name, student in progress["students"].items():
        row = [name]
        for a in assignments:
            module = student["modules"][a]
            row += ["" if module["total"] is None else f"{module['total']:g}", f"{module['penalty']:g}"]
        row += [("passed" if m["passed"] else "not passed") if (m := student["milestones"].get(n)) else ""
                for n in MILESTONES.values()]
        rows.append(row)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
