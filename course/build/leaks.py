"""Nothing students get may hold solution text, a mark scheme or a hidden test.

``python -m course.build leaks PATH...`` (and the tests) scan every text file under PATH for the
distinctive lines of the solutions, the mark schemes and the hidden tests (the files under
``SECRET_FOLDERS``, read as text), and for their markers.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

from course.build.package import GENERATED_MARK
from course.build.sources import (BEGIN_SOLUTION, MARK_SCHEME, MILESTONES, PACKAGE, ROOT, course_modules,
                                  mark_scheme_lines, read_notebook, solution_lines)

SECRET_FOLDERS = (ROOT / "autograder",)  # the hidden tests and the grader: every line is secret
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
SCANNED = {".py", ".ipynb", ".md", ".txt", ".json", ".cfg", ".toml", ".yml", ".yaml", ".html", ".csv"}


def secret_lines() -> dict[str, str]:
    """Distinctive lines students must never get -> where they come from.

    Solution lines and mark-scheme lines of every module, and the lines of the secret folders,
    minus any line that also appears in what students legitimately get (given code, prose, visible
    tests, the hand-written tinytorch files, the milestones), so that finding one is always a leak.
    """
    given: set[str] = set()
    secret: dict[str, str] = {}
    for module in course_modules():
        for cell in read_notebook(module).cells:
            inside = set(solution_lines(cell.source) if cell.cell_type == "code" else mark_scheme_lines(cell.source))
            secret.update({line: module.slug for line in inside if len(line) > 12})
            given.update(line.strip() for line in cell.source.splitlines() if line.strip() not in inside)
    for path in PACKAGE.rglob("*.py"):
        if not path.read_text().startswith(GENERATED_MARK):
            given.update(line.strip() for line in path.read_text().splitlines())
    for path in MILESTONES.glob("*.py"):  # students run them on their own tinytorch
        given.update(line.strip() for line in path.read_text().splitlines())
    for folder in SECRET_FOLDERS:
        for path in sorted(folder.rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            secret.update({line.strip(): where for line in path.read_text().splitlines() if len(line.strip()) > 20})
    return {line: where for line, where in secret.items() if line not in given}


def text_lines(path: Path) -> list[str]:
    """The lines a reader sees in a file: HTML without tags, a notebook's sources and outputs."""
    text = path.read_text(errors="replace")
    if path.suffix == ".html":  # nbgrader's feedback: compare the text a reader sees
        text = html.unescape(re.sub(r"<[^>]+>", "", text))
    if path.suffix == ".ipynb":
        try:
            nb = json.loads(text)
            parts = []
            for cell in nb.get("cells", []):
                parts.append("".join(cell.get("source", "")))
                for output in cell.get("outputs", []):
                    parts.append("".join(output.get("text", "")))
                    parts += ["".join(v) if isinstance(v, list) else str(v) for v in output.get("data", {}).values()]
            text = "\n".join(parts)
        except (ValueError, AttributeError):
            pass  # not JSON: scan it as text
    return text.splitlines()


def find_leaks(*paths: Path) -> list[str]:
    """Every secret line, hidden-test marker or mark-scheme marker in the text files under ``paths``."""
    secrets = secret_lines()
    markers = HIDDEN_MARKERS + MARK_SCHEME + (BEGIN_SOLUTION,)
    leaks = []
    for top in paths:
        files = [top] if Path(top).is_file() else sorted(p for p in Path(top).rglob("*") if p.is_file())
        for path in files:
            if path.suffix not in SCANNED:
                continue
            for number, line in enumerate(text_lines(path), 1):
                stripped = line.strip()
                if stripped in secrets:
                    leaks.append(f"{path}:{number}: solution text from {secrets[stripped]}: {stripped!r}")
                elif any(marker in stripped for marker in markers):
                    leaks.append(f"{path}:{number}: {stripped!r}")
    return leaks
