"""The formgrader's score lists less the late penalty (docker/hub/tinytorch_formgrader_late.py), on a real nbgrader
gradebook and course directory: a late submission's score in Manage Submissions, a student's assignments and
notebooks, and a notebook's submissions is nbgrader's total less the penalty grading stored (what ``nbgrader export``
and the Canvas CSV give); an on-time submission's is unchanged. tests/test_deploy.py reads the page in Chromium."""
from __future__ import annotations

import datetime
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docker" / "hub"))
import tinytorch_formgrader_late  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*not in session")

SCORES = {"alice": (10.0, None), "bob": (8.0, 0.8)}  # student: (visible score, late penalty)


@pytest.fixture
def api(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    from autograder.nbgrader_adapter import nbgrader_env
    monkeypatch.setenv("PATH", nbgrader_env()["PATH"])  # nbgrader runs alembic from PATH
    root = tmp_path / "course"
    notebook = nbformat.writes(nbformat.v4.new_notebook())
    (root / "source" / "a1").mkdir(parents=True)
    (root / "source" / "a1" / "nb.ipynb").write_text(notebook)
    db = f"sqlite:///{root / 'gradebook.db'}"
    submitted = datetime.datetime(2026, 11, 30, 10, 0)
    with Gradebook(db) as gb:
        gb.add_assignment("a1", duedate=submitted - datetime.timedelta(hours=3))
        gb.add_notebook("nb", "a1")
        gb.add_grade_cell("test", "nb", "a1", max_score=10, cell_type="code")
        for student, (score, penalty) in SCORES.items():
            gb.add_student(student)
            gb.add_submission("a1", student, timestamp=submitted)
            gb.find_grade("test", "nb", "a1", student).auto_score = score
            gb.find_submission_notebook("nb", "a1", student).late_submission_penalty = penalty
            gb.db.commit()
            for folder in ("submitted", "autograded"):  # what nbgrader's API looks for on disk
                path = root / folder / student / "a1"
                path.mkdir(parents=True)
                (path / "timestamp.txt").write_text("2026-11-30 10:00:00.000000 UTC")
                (path / "nb.ipynb").write_text(notebook)
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = db
    for function in tinytorch_formgrader_late.PATCHES:  # what the server extension does when it loads
        monkeypatch.setattr(NbGraderAPI, function.__name__, function)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def test_the_formgrader_lists_show_scores_less_the_late_penalty(api):
    expected = {student: score - (penalty or 0) for student, (score, penalty) in SCORES.items()}
    assert {s["student"]: s["score"] for s in api.get_submissions("a1")} == expected
    assert {s["student"]: s["score"] for s in api.get_notebook_submissions("a1", "nb")} == expected
    for student in SCORES:
        (submission,) = api.get_student_submissions(student)
        assert submission["score"] == expected[student]
        (notebook,) = api.get_student_notebook_submissions(student, "a1")
        assert notebook["score"] == expected[student]
        assert submission["max_score"] == notebook["max_score"] == 10
