"""The hub's grading and progress pages (docker/hub/tinytorch_grading.py) show student content escaped.

Student names come from the hub, but messages, notes and milestone figures come from the student's own
code through the grading containers: each page is rendered here with hostile values in every field and
must hold no tag of them. The pages' CSP allows no script at all (checked too). In Chromium, on the
deployed hub: tests/test_deploy.py.
"""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parent.parent / "docker" / "hub"
HOSTILE = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The page module, with JupyterHub's service auth (only in the hub image) replaced by stand-ins."""
    auth = types.ModuleType("jupyterhub.services.auth")
    auth.HubOAuthenticated = type("HubOAuthenticated", (), {})
    auth.HubOAuthCallbackHandler = type("HubOAuthCallbackHandler", (), {})
    utils = types.ModuleType("jupyterhub.utils")
    utils.url_path_join = lambda *parts: "/".join(p.strip("/") for p in parts)
    saved = {name: sys.modules.get(name) for name in ("jupyterhub", "jupyterhub.services", "jupyterhub.services.auth",
                                                       "jupyterhub.utils")}
    sys.modules.update({"jupyterhub": types.ModuleType("jupyterhub"), "jupyterhub.services": types.ModuleType("s"),
                        "jupyterhub.services.auth": auth, "jupyterhub.utils": utils})
    sys.path.insert(0, str(HUB))
    try:
        yield importlib.import_module("tinytorch_grading")
    finally:
        sys.path.remove(str(HUB))
        sys.modules.pop("tinytorch_grading", None)
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def render(pages, name: str, **values) -> str:
    common = dict(title="t", prefix="/services/grading/", course="tinytorch", course_title=HOSTILE, user="tina", message=HOSTILE, ta=True,
                  xsrf_form_html=lambda: '<input type="hidden" name="_xsrf" value="token">')
    return pages.LOADER.load(name).generate(**{**common, **values}).decode()


def module_row(**overrides) -> dict:
    row = {"due": "2026-12-07 23:59 UTC", "extension_hours": 0, "submitted": HOSTILE, "late_hours": 30.0,
           "visible": 10.0, "hidden": 12.0, "written": None, "penalty": 4.4, "total": 17.6, "max": 38.0,
           "status": HOSTILE}
    return {**row, **overrides}


def assert_inert(html: str) -> None:
    assert "<script>window.__pwned" not in html and "<img src=x" not in html, html
    assert "&lt;script&gt;" in html  # shown, as text


def test_no_page_lets_student_content_run(pages):
    table = {"assignments": ["02_tensor"], "due": {"02_tensor": ""},
             "students": {"bob": {"modules": {"02_tensor": module_row()},
                                  "milestones": {"XOR": {"passed": False, "figures": HOSTILE}}}}}
    assignment = {"name": "02_tensor", "due": "", "running": None, "runs": [
        {"id": "20260101-000000-abcdef", "action": "grade", "student": None, "by": HOSTILE, "state": "done"}],
        "students": [{"name": "bob", "status": HOSTILE, "hidden": "12/20", "visible": "3/5 passed", "message": HOSTILE,
                      "graded_at": "", "late_hours": 30.0, "extension_hours": 24, "penalty": 4.4, "total": 17.6,
                      "max": 38.0}]}
    run = {"id": "x", "action": "grade", "assignment": "02_tensor", "student": None, "by": "tina", "state": "running",
           "started": 0, "finished": None, "log": [HOSTILE], "submissions": {"bob": {"state": "error", "detail": HOSTILE}}}
    outputs = [render(pages, "student.html", table=table), render(pages, "class.html", table=table),
               render(pages, "assignment.html", a=assignment), render(pages, "base.html"),
               render(pages, "run.html", run=run, started="10:00", seconds=None),
               render(pages, "index.html", assignments=[{"name": "02_tensor", "submitted": 1, "graded": 1,
                                                         "gradable": True, "running": None, "last": None}])]
    for html in outputs:
        assert_inert(html)
    assert '<meta http-equiv="refresh" content="2">' in outputs[4]  # a running batch refreshes without script
    assert "17.6/38" in outputs[0] and "4.4" in outputs[0] and "17.6 (late -4.4)" in outputs[1]


def test_every_page_forbids_script_and_framing_elsewhere(pages):
    policy = dict(part.strip().split(" ", 1) for part in pages.CSP.split(";"))
    assert policy["default-src"] == "'none'" and "script-src" not in policy  # no script from anywhere
    assert policy["form-action"] == "'self'" and policy["frame-ancestors"] == "'self'"


def test_a_students_pages_offer_no_link_to_the_tas_tools(pages):
    table = {"assignments": [], "due": {}, "students": {"sam": {"modules": {}, "milestones": {}}}}
    student = render(pages, "student.html", table=table, ta=False, prefix="/services/progress/")
    assert "/services/grading/" not in student and "formgrader" not in student and "/services/progress/" in student
    assert "/services/grading/" in render(pages, "student.html", table=table, ta=True)
