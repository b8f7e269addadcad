"""The hidden tests' part of a student's feedback page (nbgrader's page, or one of its own)."""
from __future__ import annotations

import html
from pathlib import Path

from autograder.late import late_text
from autograder.results import write_atomic


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
    late = late_text(result.get("late", {}))
    problems += f"<p class='late' id='late-penalty'>{esc(late)}</p>" if late else ""
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
