"""The users' guides (docs/) and their pictures: every picture a guide shows is committed, small, and one the
browser tests take (`make screenshots` takes them again on a test deploy), and the README links each guide."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDES = ["students.md", "tas.md", "admins.md"]


def shown() -> dict[str, str]:
    """Picture file -> the guide that shows it."""
    return {name: guide for guide in GUIDES
            for name in re.findall(r"!\[[^\]]*\]\(img/([^)]+)\)", (DOCS / guide).read_text())}


def taken() -> set[str]:
    """The pictures the browser tests save: shot(page, "<name>") -> <name>.jpg."""
    source = (ROOT / "tests" / "test_deploy.py").read_text()
    return {f"{name}.jpg" for name in re.findall(r'shot\(\w+, "([a-z0-9-]+)"\)', source)}


def test_every_picture_a_guide_shows_is_committed_small_and_taken_by_a_test():
    pictures = shown()
    assert pictures, "the guides show no picture"
    missing = sorted(n for n in pictures if not (DOCS / "img" / n).is_file())
    assert not missing, f"run `make screenshots`: no docs/img/ for {missing}"
    large = sorted(n for n in pictures if (DOCS / "img" / n).stat().st_size > 200_000)
    assert not large, f"pictures over 200 KB: {large}"
    untaken = sorted(set(pictures) - taken())
    assert not untaken, f"shown in a guide but no browser test takes them: {untaken}"


def test_no_stale_picture_and_the_readme_links_every_guide():
    stale = sorted(p.name for p in (DOCS / "img").glob("*") if p.name not in shown())
    assert not stale, f"pictures no guide shows: {stale}"
    readme = (ROOT / "README.md").read_text()
    assert all(f"docs/{guide}" in readme for guide in GUIDES), "the README links each guide"


def test_make_screenshots_runs_every_test_that_opens_a_browser():
    """`make screenshots` selects the browser tests by name (-k in_a_browser): every test of test_deploy.py that
    opens Chromium is named so, or the guides' pictures it takes would go stale."""
    import ast

    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^screenshots:.*\n\t.*tests/test_deploy\.py -k in_a_browser$", makefile, re.M), makefile
    tree = ast.parse((ROOT / "tests" / "test_deploy.py").read_text())
    browsing = [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
                and "chromium()" in ast.unparse(node)]
    assert browsing, "no test opens Chromium"
    unnamed = [name for name in browsing if "in_a_browser" not in name]
    assert not unnamed, f"open Chromium but `make screenshots` does not run them: {unnamed}"
