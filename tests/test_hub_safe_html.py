"""What nbgrader renders of a student's notebook carries no script: the hub image's settings, without a hub.

docker/hub/safe_html/nbgrader_config.py (sanitising) and docker/hub/templates/tinytorch_formgrade (the
formgrader's submission view with a nonce on each of its own scripts) are rendered here with the
nbconvert and nbgrader the hub image pins, on a notebook holding the payloads of the browser test
(tests/test_deploy.py, which opens such a submission in Chromium on the deployed hub).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "docker" / "hub"
WATCH = "http://127.0.0.1:18953"
PAYLOADS = {
    "script tag": f"<script>window.__pwned = 'script'; fetch('{WATCH}/script')</script>",
    "img onerror": """<img src="x" onerror="window.__pwned = 'img'">""",
    "javascript: link": """<a href="javascript:window.__pwned = 'link'">payload link</a>""",
    "iframe srcdoc": """<iframe srcdoc="<script>parent.__pwned = 'iframe'</script>"></iframe>""",
    "svg onload": """<svg onload="window.__pwned = 'svg'"><circle r="4"/></svg>""",
    "object": """<object data="javascript:window.__pwned = 'object'"></object>""",
    "style": """<style>body { background: url('https://elsewhere.test/x') }</style>""",
    "base": """<base href="https://elsewhere.test/">""",
    "form": """<form action="https://elsewhere.test/"><button>send</button></form>""",
    "formgrader's own class": """<div class="score" id="statusmessage">fake score</div>""",
}
# a tag with an event handler, or one that runs, embeds or sends elsewhere
ACTIVE = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=|<(script|iframe|svg|object|embed|style|base|form)[\s>]"
                    r"|href=\"javascript:|<[^>]*\b(id|class)=\"(statusmessage|score)\"[^>]*>fake", re.I)


def hostile_notebook():
    nb = nbformat.v4.new_notebook()
    markdown = "# Answer\n\nSome *text*, `x < y` and $a^2$.\n\n```python\nprint(x)\n```\n\n" + "\n\n".join(PAYLOADS.values())
    answer = nbformat.v4.new_markdown_cell(markdown)
    answer.metadata["nbgrader"] = {"solution": True, "grade": True, "grade_id": "answer", "points": 1,
                                   "score": 0, "comment": "", "task": False}
    output = nbformat.v4.new_output("display_data", data={
        "text/html": PAYLOADS["img onerror"], "text/markdown": PAYLOADS["svg onload"],
        "application/javascript": "window.__pwned = 'output'", "image/svg+xml": PAYLOADS["svg onload"]})
    raw = nbformat.v4.new_raw_cell(PAYLOADS["script tag"], metadata={"raw_mimetype": "text/html"})
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), answer,
                nbformat.v4.new_code_cell("print(1)", outputs=[output]), raw]
    return nb


def exporter(template: str, safe: bool = True) -> HTMLExporter:
    """An HTMLExporter configured as nbgrader's formgrader or generate_feedback configure theirs."""
    import nbgrader.server_extensions.formgrader.handlers as formgrader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(HUB / "safe_html")).load_config() if safe else Config()
    config.HTMLExporter.template_name = template
    config.HTMLExporter.extra_template_basedirs = [str(HUB / "templates"), formgrader.template_path]
    bootstrap = Path(formgrader.static_path) / "node_modules" / "bootstrap" / "dist" / "css"
    config.HTMLExporter.extra_template_paths = [formgrader.template_path, str(bootstrap)]
    return HTMLExporter(config=config)


RESOURCES = {"assignment_id": "01_setup", "notebook_id": "01_setup", "submission_id": "abc", "index": 0,
             "total": 1, "base_url": "/services/tinytorch", "student": "alice", "last_name": None,
             "first_name": None, "notebook_path": "autograded/alice/01_setup/01_setup.ipynb",
             "csp_nonce": "N0nce", "nbgrader": {"notebook": "01_setup", "score": 0, "max_score": 1,
                                                 "late_penalty": 0}}


def render(template: str, safe: bool = True) -> str:
    html, _ = exporter(template, safe).from_notebook_node(hostile_notebook(), resources=dict(RESOURCES))
    return html


def student_part(html: str) -> str:
    """The notebook's cells: from the first cell to the end (the page's own scripts come before)."""
    return html[html.index('class="cell'):]


def test_without_the_settings_the_submission_view_and_feedback_carry_the_payloads():
    """The hole the settings close: nbgrader's templates skip nbconvert's sanitize_html for markdown."""
    for template in ("formgrade", "feedback"):
        assert ACTIVE.search(student_part(render(template, safe=False))), template


@pytest.mark.parametrize("template", ["formgrade", "feedback", "tinytorch_formgrade"])
def test_sanitised_html_keeps_the_text_and_no_active_markup(template):
    html = render(template)
    cells = student_part(html)
    assert not ACTIVE.search(cells), ACTIVE.search(cells).group(0)
    assert "payload link" in cells and "<em>text</em>" in cells and "<h1" in cells  # markdown still renders
    assert '<span class="n">' in cells  # and code is highlighted
    assert "&lt;script&gt;window.__pwned" in cells  # shown, escaped, to the grader


def formgrader_csp():
    import sys

    sys.path.insert(0, str(HUB))
    try:
        import tinytorch_formgrader_csp
    finally:
        sys.path.remove(str(HUB))
    return tinytorch_formgrader_csp


def test_the_submission_view_runs_only_its_own_scripts_with_the_responses_nonce(tmp_path, monkeypatch):
    """As the formgrader service renders a submission: nbgrader's exporter, swapped by the extension."""
    import nbgrader.server_extensions.formgrader.handlers as formgrader

    templates = tmp_path / "share" / "nbconvert" / "templates"  # where the hub image installs ours
    templates.mkdir(parents=True)
    (templates / "tinytorch_formgrade").symlink_to(HUB / "templates" / "tinytorch_formgrade")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))
    config = PyFileConfigLoader("nbgrader_config.py", path=str(HUB / "safe_html")).load_config()
    config.HTMLExporter.template_name = "formgrade"  # what nbgrader's formgrader sets
    config.HTMLExporter.extra_template_basedirs = [formgrader.template_path]
    settings = {"nbgrader_exporter": HTMLExporter(config=config)}
    nbformat.write(hostile_notebook(), tmp_path / "01_setup.ipynb")
    csp = formgrader_csp()
    resources = {k: v for k, v in RESOURCES.items() if k != "csp_nonce"}
    html, _ = csp._NoncedExporter(csp._submission_exporter(settings), "N0nce").from_filename(
        str(tmp_path / "01_setup.ipynb"), resources=resources)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all('nonce="N0nce"' in tag for tag in scripts), [t for t in scripts if "N0nce" not in t]
    for own in ("js/formgrade.js", "js/backbone_xsrf.js", "jquery.min.js", 'var submission_id = "abc"'):
        assert own in html  # what nbgrader's template loads, still loaded
    assert "cdnjs" not in html and "onclick" not in html  # no MathJax from a CDN, no inline handlers
    assert not ACTIVE.search(student_part(html)) and "payload link" in html


def test_the_submission_views_policy_allows_no_script_without_the_nonce():
    submission_policy = formgrader_csp().submission_policy
    policy = dict(part.split(" ", 1) for part in submission_policy("N0nce", "'self' https://hub.test").split("; "))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'nonce-N0nce'"  # no 'self': another user's files on the hub are not scripts
    assert policy["connect-src"] == policy["img-src"].split()[0] == "'self'"
    assert policy["form-action"] == policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'self' https://hub.test"
