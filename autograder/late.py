"""Due dates, extensions and the late policy of a course directory.

The course config says them (``deadlines``, ``late_policy``: hub_config.py); the course build writes
``course_policy.json`` into the course directory and enters each due date in nbgrader's gradebook where
it has none yet (after that, TAs change due dates in formgrader: the gradebook is the truth). Extensions
are granted per student and assignment from the hub's grading page and kept in ``autograder/extensions.json``
(a student may be given one before submitting, when nbgrader has no row to hold it yet); grading copies
each into nbgrader's own ``extension`` so formgrader shows the same lateness.

A late submission loses ``percent_per_day`` of its autograded score (visible and hidden tests) for every day
or part of a day past its due date, extension and grace period, at most ``max_percent``. Grading stores it as
nbgrader's late penalty, which formgrader, ``nbgrader export`` and the Canvas CSV subtract from the total.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from autograder.results import write_atomic

POLICY_FILE = "course_policy.json"
EXTENSIONS_FILE = Path("autograder") / "extensions.json"
DAY = 86400


@dataclass(frozen=True)
class LatePolicy:
    grace_minutes: float = 0
    percent_per_day: float = 0
    max_percent: float = 100

    def percent(self, seconds_late: float) -> float:
        """What a submission this many seconds past its due date (extension included) loses, in percent."""
        if seconds_late <= self.grace_minutes * 60:
            return 0.0
        return min(self.max_percent, self.percent_per_day * math.ceil(seconds_late / DAY))

    def describe(self) -> str:
        return (f"{self.percent_per_day:g}% of the autograded score per day or part of a day late, at most "
                f"{self.max_percent:g}%, after a grace period of {self.grace_minutes:g} minutes")


def policy_text(cfg: dict) -> str:
    """``course_policy.json``: what the course build writes from the course config."""
    return json.dumps({"deadlines": cfg["deadlines"], "late_policy": cfg["late_policy"]}, indent=1, sort_keys=True) + "\n"


def read_policy(course_root: Path) -> tuple[dict[str, datetime], LatePolicy]:
    """The due dates the course config gave, and its late policy (none and no penalty before a build wrote them)."""
    path = Path(course_root) / POLICY_FILE
    if not path.is_file():
        return {}, LatePolicy()
    data = json.loads(path.read_text())
    return ({module: datetime.fromisoformat(when) for module, when in data["deadlines"].items()},
            LatePolicy(**data["late_policy"]))


def seed_deadlines(gradebook, deadlines: dict[str, datetime]) -> list[str]:
    """Enter each due date in nbgrader's gradebook where its assignment has none; return what was set."""
    from nbgrader.api import MissingEntry

    entered = []
    for assignment, when in sorted(deadlines.items()):
        try:
            record = gradebook.find_assignment(assignment)
        except MissingEntry:
            continue
        if record.duedate is None:
            # nbgrader keeps naive UTC date-times
            gradebook.update_or_create_assignment(assignment, duedate=when.astimezone(timezone.utc).replace(tzinfo=None))
            entered.append(assignment)
    return entered


def read_extensions(course_root: Path) -> dict[str, dict[str, float]]:
    """Assignment -> student -> hours of extension."""
    path = Path(course_root) / EXTENSIONS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def grant_extension(course_root: Path, assignment: str, student: str, hours: float) -> None:
    """Give ``student`` ``hours`` more for ``assignment`` (0 takes the extension back); extensions do not add up."""
    if not 0 <= hours <= 24 * 365:
        raise ValueError(f"an extension of {hours:g} hours: give between 0 and {24 * 365} hours")
    extensions = read_extensions(course_root)
    given = extensions.setdefault(assignment, {})
    if hours:
        given[student] = hours
    else:
        given.pop(student, None)
    write_atomic(Path(course_root) / EXTENSIONS_FILE, json.dumps(extensions, indent=1, sort_keys=True) + "\n")


def apply_late_penalties(gradebook, course_root: Path, assignment: str, students: list[str]) -> dict[str, dict]:
    """For each student's submission in the gradebook: copy their extension into nbgrader, then store the late
    penalty (percent of the autograded score) on the notebook; return student -> what the feedback says."""
    from nbgrader.api import MissingEntry

    _, policy = read_policy(course_root)
    extensions = read_extensions(course_root).get(assignment, {})
    lateness = {}
    for student in students:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            continue
        hours = extensions.get(student, 0)
        submission.extension = timedelta(hours=hours) if hours else None  # total_seconds_late counts it
        seconds = float(submission.total_seconds_late or 0)
        percent = policy.percent(seconds)
        for notebook in submission.notebooks:
            autograded = sum(g.score or 0 for g in notebook.grades if g.auto_score is not None or
                             g.cell.name == "hidden_tests")
            notebook.late_submission_penalty = round(autograded * percent / 100, 4) if percent else None
        gradebook.db.commit()  # the extension and the penalties together
        lateness[student] = {"seconds_late": seconds, "extension_hours": hours, "percent": percent,
                             "points": float(submission.late_submission_penalty or 0), "policy": policy.describe()}
    return lateness


def late_text(late: dict) -> str:
    """One sentence for the feedback: how late, and what it cost."""
    if not late or late["seconds_late"] <= 0:
        return ""
    hours = late["seconds_late"] / 3600
    when = f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"
    extension = f" (after an extension of {late['extension_hours']:g} hours)" if late["extension_hours"] else ""
    if not late["percent"]:
        return f"Submitted {when} after the due date{extension}, within the grace period: no penalty."
    return (f"Submitted {when} after the due date{extension}: late penalty {late['percent']:g}% of the autograded "
            f"score, {late['points']:g} points ({late['policy']}).")
