"""LMS downloads are hostile archives (autograder/lms_zips.py): `autograder grade --zip` extracts only plain
files under their own names, inside the course, with fresh modes, bounded in size and count; a student's bad
upload is reported and skipped while the rest is collected (real nbgrader zip_collect, no containers)."""
from __future__ import annotations

import io
import os
import secrets
import stat
import zipfile
from pathlib import Path

import nbformat

from autograder import lms_zips
from autograder.nbgrader_adapter import Course
from tests.test_autograder import course_dir, reference_notebook  # noqa: F401

SLUG = "01_setup"


def add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = stat.S_IFREG | 0o644) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def test_hostile_members_are_skipped_and_reported_and_the_rest_collected(course_dir, tmp_path):  # noqa: F811
    notebook = nbformat.writes(reference_notebook(SLUG)).encode()
    escape = f"ttzip-escape-{secrets.token_hex(4)}"
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as nested:  # mallory's upload: an archive naming a classmate's file
        add(nested, f"bob_7_8_{SLUG}.ipynb", b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    download = tmp_path / "submissions.zip"
    with zipfile.ZipFile(download, "w") as archive:
        add(archive, f"carol_1_2_{SLUG}.ipynb", notebook)
        add(archive, f"dave_9_10_{SLUG}.ipynb", notebook, mode=stat.S_IFREG | 0o4777)  # setuid, world-writable
        add(archive, f"../../../../../../tmp/{escape}/frank_3_3_{SLUG}.ipynb", notebook)
        add(archive, f"/tmp/{escape}-abs/gina_4_4_{SLUG}.ipynb", notebook)
        add(archive, f"mallory_3_4_{SLUG}.ipynb", b"/etc/shadow", mode=stat.S_IFLNK | 0o777)
        add(archive, "mallory_5_6_upload.zip", inner.getvalue())
        add(archive, f"eve_11_12_{SLUG}.ipynb", bytes(lms_zips.MAX_MEMBER_BYTES + 2**20))  # compresses to ~70 kB
    not_a_zip = tmp_path / "notes.zip"
    not_a_zip.write_text("this is not a zip")

    course = Course(course_dir)
    problems = course.zip_collect(SLUG, [download, not_a_zip])

    submitted = course_dir / "submitted"
    assert (submitted / "carol" / SLUG / f"{SLUG}.ipynb").read_bytes() == notebook
    dave = submitted / "dave" / SLUG / f"{SLUG}.ipynb"
    assert dave.read_bytes() == notebook and not dave.stat().st_mode & (stat.S_ISUID | stat.S_IWOTH), oct(dave.stat().st_mode)
    for student in ("bob", "mallory", "eve"):
        assert not (submitted / student / SLUG).exists(), f"{student} got a submission:\n" + "\n".join(problems)
    assert not list(Path("/tmp").glob(f"{escape}*")), "the archive wrote outside the course"
    said = "\n".join(problems)
    assert "mallory_3_4_01_setup.ipynb: a link, not a file" in said, said
    assert "mallory_5_6_upload.zip: an archive inside the archive is not opened" in said, said
    assert "eve_11_12_01_setup.ipynb: larger than 64 MB decompressed" in said, said
    assert "notes.zip: not a zip file" in said, said
    # the stored paths are never used: frank's and gina's files are extracted under their base names only
    extracted = {p.name for p in (course_dir / "downloaded" / SLUG / "extracted").rglob("*.ipynb")}
    assert f"frank_3_3_{SLUG}.ipynb" in extracted and f"gina_4_4_{SLUG}.ipynb" in extracted
    assert all(p.resolve().is_relative_to(course_dir.resolve()) for p in (course_dir / "downloaded").rglob("*"))


def test_the_size_limit_is_counted_while_reading_not_taken_from_the_header(tmp_path):
    """A member whose header understates its size is still stopped at the limit."""
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w") as archive:
        add(archive, f"eve_1_1_{SLUG}.ipynb", bytes(lms_zips.MAX_MEMBER_BYTES + 2**20))
    data = bytearray(path.read_bytes())
    real = (lms_zips.MAX_MEMBER_BYTES + 2**20).to_bytes(4, "little")
    small = (1000).to_bytes(4, "little")
    # the uncompressed size in the local header and the central directory
    data = data.replace(real, small)
    path.write_bytes(bytes(data))
    skipped = lms_zips.extract_download(path, tmp_path / "out")
    assert skipped and ("larger than 64 MB" in skipped[0] or "unreadable" in skipped[0]), skipped
    assert not list((tmp_path / "out").iterdir()), "nothing of it is kept"
    assert os.path.getsize(path) < 2**20
