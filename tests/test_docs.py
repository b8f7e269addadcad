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
