"""Due dates, extensions and the late policy (autograder/late.py) on a real nbgrader gradebook."""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import hub_config
from autograder import late
from autograder.gradebook import HIDDEN_CELL, submission_total

DUE = datetime(2026, 12, 7, 23, 59)  # nbgrader keeps naive UTC


@pytest.fixture(autouse=True)
def alembic_on_path(monkeypatch):
    """A new gradebook runs nbgrader's migrations with ``alembic`` from PATH: this interpreter's."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])


@pytest.mark.parametrize("seconds, percent", [
    (-3600, 0), (0, 0), (14 * 60, 0),            # on time, and within the 15 minutes' grace
    (16 * 60, 10), (86400, 10), (86401, 20),     # each day or part of a day costs 10%
    (10 * 86400, 50),                            # at most 50%
])
def test_the_penalty_counts_started_days_after_the_grace_period_up_to_its_cap(seconds, percent):
    assert late.LatePolicy(grace_minutes=15, percent_per_day=10, max_percent=50).percent(seconds) == percent


def course_with(tmp_path, submitted: dict[str, datetime], policy: dict | None = None):
    """A course directory whose gradebook has 02_tensor (10 visible points, 20 hidden) and these submissions,
    each with full visible and hidden scores."""
    from nbgrader.api import Gradebook

    cfg = hub_config.load_course_config(None)
    cfg["late_policy"] = policy or cfg["late_policy"]
    (tmp_path / late.POLICY_FILE).write_text(late.policy_text(cfg))
    gradebook = Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", "tinytorch")
    gradebook.add_assignment("02_tensor", duedate=DUE)
    gradebook.add_notebook("02_tensor", "02_tensor")
    gradebook.add_grade_cell("test_add", "02_tensor", "02_tensor", max_score=10, cell_type="code")
    gradebook.add_task_cell(HIDDEN_CELL, "02_tensor", "02_tensor", max_score=20, cell_type="markdown")
    for student, when in submitted.items():
        gradebook.add_student(student)
        gradebook.add_submission("02_tensor", student, timestamp=when)
        for grade in gradebook.find_submission("02_tensor", student).notebooks[0].grades:
            if grade.cell.name == HIDDEN_CELL:
                grade.manual_score = 20
            else:
                grade.auto_score = 10
    gradebook.db.commit()
    return gradebook


def test_a_late_submission_loses_its_share_of_the_autograded_score_and_the_total_shows_it(tmp_path):
    gradebook = course_with(tmp_path, {"ontime": DUE - timedelta(hours=1), "grace": DUE + timedelta(minutes=10),
                                       "bob": DUE + timedelta(hours=30), "ext": DUE + timedelta(hours=30)})
    late.grant_extension(tmp_path, "02_tensor", "ext", 24)
    with gradebook:
        found = late.apply_late_penalties(gradebook, tmp_path, "02_tensor", ["ontime", "grace", "bob", "ext"])
        totals = {s: submission_total(gradebook.find_submission("02_tensor", s), None) for s in found}
    assert {s: f["percent"] for s, f in found.items()} == {"ontime": 0, "grace": 0, "bob": 20, "ext": 10}
    assert totals == {"ontime": 30, "grace": 30, "bob": 24, "ext": 27}
    assert "Submitted 30.0 hours after the due date: late penalty 20%" in late.late_text(found["bob"])
    assert "after an extension of 24 hours" in late.late_text(found["ext"])
    assert "within the grace period" in late.late_text(found["grace"])
    assert late.late_text(found["ontime"]) == ""


def test_extensions_are_kept_replaced_and_taken_back(tmp_path):
    late.grant_extension(tmp_path, "02_tensor", "bob", 48)
    late.grant_extension(tmp_path, "02_tensor", "bob", 24)  # extensions do not add up
    assert late.read_extensions(tmp_path) == {"02_tensor": {"bob": 24}}
    late.grant_extension(tmp_path, "02_tensor", "bob", 0)
    assert late.read_extensions(tmp_path) == {"02_tensor": {}}
    with pytest.raises(ValueError, match="between 0 and"):
        late.grant_extension(tmp_path, "02_tensor", "bob", -5)


def test_the_course_configs_due_dates_seed_the_gradebook_once(tmp_path):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", "tinytorch") as gradebook:
        gradebook.add_assignment("02_tensor")
        gradebook.add_assignment("03_activations", duedate=DUE)  # a TA set it in formgrader
        config = {"02_tensor": datetime.fromisoformat("2026-12-08T09:00:00+01:00"),
                  "03_activations": datetime.fromisoformat("2027-01-01T00:00:00+00:00")}
        assert late.seed_deadlines(gradebook, config) == ["02_tensor"]
        assert gradebook.find_assignment("02_tensor").duedate == datetime(2026, 12, 8, 8, 0)  # in UTC
        assert gradebook.find_assignment("03_activations").duedate == DUE  # the TA's date stays


def test_bad_due_dates_in_the_course_config_are_named(tmp_path):
    path = tmp_path / "course.yml"
    path.write_text(json.dumps({"deadlines": {"02_tensor": "2026-12-08 23:59", "03_activations": "someday soon"}}))
    with pytest.raises(hub_config.CourseConfigError) as error:
        hub_config.load_course_config(path)
    assert "deadlines.02_tensor: '2026-12-08 23:59' has no time zone" in str(error.value)
    assert "deadlines.03_activations: 'someday soon' is not an ISO 8601" in str(error.value)


def test_the_progress_table_shows_scores_lateness_and_milestones(tmp_path):
    from autograder import progress

    gradebook = course_with(tmp_path, {"ontime": DUE - timedelta(hours=1), "bob": DUE + timedelta(hours=30)})
    (tmp_path / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = 'tinytorch'\nc.CourseDirectory.root = {str(tmp_path)!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{tmp_path / 'gradebook.db'}'\n")
    (tmp_path / "source" / "02_tensor").mkdir(parents=True)
    with gradebook:
        late.apply_late_penalties(gradebook, tmp_path, "02_tensor", ["ontime", "bob"])
    results = tmp_path / "autograder" / "02_tensor"
    results.mkdir(parents=True)
    for student in ("ontime", "bob"):
        (results / f"{student}.json").write_text(json.dumps({"status": "graded", "score": 20, "possible": 20,
                                                             "tests": []}))
    table = progress.class_progress(tmp_path)
    bob = table["students"]["bob"]["modules"]["02_tensor"]
    assert (bob["visible"], bob["hidden"], bob["penalty"], bob["total"], bob["max"]) == (10, 20, 6, 24, 30)
    assert bob["late_hours"] == 30 and bob["due"] == "2026-12-07 23:59 UTC" and bob["status"] == "graded"
    assert table["students"]["ontime"]["modules"]["02_tensor"]["total"] == 30
    assert progress.progress_csv(table).splitlines()[1:] == ["bob,24,6,,,", "ontime,30,0,,,"]
    milestone = {"kind": "milestone", "passed": True, "notes": ["XOR: loss 0.00412 after 900 steps"]}
    assert progress.milestones({"08_training": {"tests": [milestone]}}) == {
        "XOR": {"passed": True, "figures": "XOR: loss 0.00412 after 900 steps"}}


def test_a_students_assignment_list_reads_the_due_dates_live_with_their_own_extension(tmp_path):
    """What the Assignment List shows (the progress page's due.json, through the grading agent): the gradebook's
    due date as it is now (a TA changed it after release) and only the asking student's extension."""
    from autograder import agent as grading

    gradebook = course_with(tmp_path, {"bob": DUE})
    (tmp_path / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = 'tinytorch'\nc.CourseDirectory.root = {str(tmp_path)!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{tmp_path / 'gradebook.db'}'\n")
    late.grant_extension(tmp_path, "02_tensor", "bob", 24)
    settings = grading.Settings(course_dir=tmp_path, state_dir=tmp_path / "state", hub_container="hub",
                                course_in_hub="/srv/nbgrader/course", grader="grader-tinytorch", grader_uid=1999, gid=100)
    agent = grading.Agent(settings)
    assert agent.due_dates("bob") == {"due": {"02_tensor": "2026-12-07 23:59 UTC"}, "extension_hours": {"02_tensor": 24}}
    with gradebook:
        gradebook.update_or_create_assignment("02_tensor", duedate=DUE + timedelta(days=2))  # the TA's change
    assert agent.due_dates("alice") == {"due": {"02_tensor": "2026-12-09 23:59 UTC"}, "extension_hours": {}}
    with pytest.raises(grading.Refused, match="not a user name"):
        agent.due_dates("../bob")
