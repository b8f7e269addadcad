"""Late penalties in the formgrader's scores (a Jupyter server extension of the formgrader service).

Grading stores each late submission's penalty as nbgrader's ``late_submission_penalty`` (autograder/late.py),
and ``nbgrader export``, the Canvas CSV and the progress pages subtract it. nbgrader 0.9.6's formgrader does
not: its lists (Manage Submissions, a student's assignments and notebooks, a notebook's submissions) showed
the score before the penalty, so a TA read a late student's score higher there than in the Canvas CSV the
class is graded from. Here the API those lists read (``NbGraderAPI``, in this server only) gives the score
less the penalty, as ``nbgrader export`` does. The grading page of one submission adds up its grades itself
and is unchanged; tests/test_deploy.py checks the lists in Chromium.
"""
from nbgrader.api import MissingEntry
from nbgrader.apps.api import NbGraderAPI

_original = {name: getattr(NbGraderAPI, name) for name in
             ("get_submissions", "get_submission", "get_student_notebook_submissions", "get_notebook_submissions")}


def _less(record: dict, penalty) -> dict:
    if penalty and record.get("score") is not None:
        record["score"] = float(record["score"]) - float(penalty)
    return record


def get_submissions(self, assignment_id):
    submissions = _original["get_submissions"](self, assignment_id)
    with self.gradebook as gb:
        try:
            penalties = {s.student.id: s.late_submission_penalty for s in gb.assignment_submissions(assignment_id)}
        except MissingEntry:
            return submissions
    # the ungraded ones (nbgrader's get_submission, score 0) have no penalty yet
    return [_less(s, penalties.get(s["student"])) if s.get("autograded") else s for s in submissions]


def get_submission(self, assignment_id, student_id, ungraded=None, students=None):
    submission = _original["get_submission"](self, assignment_id, student_id, ungraded=ungraded, students=students)
    if not submission.get("autograded"):
        return submission
    with self.gradebook as gb:
        try:
            penalty = gb.find_submission(assignment_id, student_id).late_submission_penalty
        except MissingEntry:
            return submission
    return _less(submission, penalty)


def get_student_notebook_submissions(self, student_id, assignment_id):
    notebooks = _original["get_student_notebook_submissions"](self, student_id, assignment_id)
    with self.gradebook as gb:
        for notebook in notebooks:
            if notebook.get("id") is not None:
                try:
                    found = gb.find_submission_notebook(notebook["name"], assignment_id, student_id)
                except MissingEntry:
                    continue
                _less(notebook, found.late_submission_penalty)
    return notebooks


def get_notebook_submissions(self, assignment_id, notebook_id):
    notebooks = _original["get_notebook_submissions"](self, assignment_id, notebook_id)
    with self.gradebook as gb:
        for notebook in notebooks:
            if notebook.get("id") is not None:
                try:
                    found = gb.find_submission_notebook(notebook_id, assignment_id, notebook["student"])
                except MissingEntry:
                    continue
                _less(notebook, found.late_submission_penalty)
    return notebooks


PATCHES = (get_submissions, get_submission, get_student_notebook_submissions, get_notebook_submissions)


def _jupyter_server_extension_points():
    return [{"module": "tinytorch_formgrader_late"}]


def _load_jupyter_server_extension(serverapp):
    for function in PATCHES:
        setattr(NbGraderAPI, function.__name__, function)
    serverapp.log.info("tinytorch: the formgrader's scores are less the late penalties")
