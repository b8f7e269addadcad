"""The hub's nbgrader collect (docker/hub/tinytorch_exchange.py) against hostile submissions in the exchange.

Real nbgrader (its Python API, in this process) collects from an exchange whose submissions are owned by
the students' own uids, as on the hub (these tests run as root, which can give files any owner). A student
controls everything inside their own submission folder: links to a classmate's notebook or to the
instructor's source, FIFOs, hard links, a folder claiming another name. Each is refused and reported; the
honest submission in the same batch is collected as it is.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docker" / "hub"))
import tinytorch_exchange  # noqa: E402

from autograder.nbgrader_adapter import nbgrader_env  # noqa: E402

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files the students' uids"),
              pytest.mark.filterwarnings("ignore:.*not in session")]

ASSIGNMENT = "a1"
UIDS = {"alice": 30001, "bob": 30002, "carol": 30003, "dave": 30004, "erin": 30005}


def notebook(text: str) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    return nbformat.writes(nb)


@pytest.fixture
def course(tmp_path, monkeypatch) -> Path:
    """A course directory and an exchange with one assignment, configured as on the hub."""
    root, exchange = tmp_path / "course", tmp_path / "exchange"
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    (root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(notebook("THE INSTRUCTOR'S SOLUTIONS"))
    inbound = exchange / "tt" / "inbound"
    inbound.mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.course_id = 'tt'\nc.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{root / 'gradebook.db'}'\nc.Exchange.root = {str(exchange)!r}\n"
        "c.ExchangeFactory.collect = 'tinytorch_exchange.OwnerCheckedExchangeCollect'\n"
        "c.CollectApp.check_owner = True\n")
    real = tinytorch_exchange.pwd.getpwuid

    def getpwuid(uid: int):  # the hub container's passwd entries for the students (hub_config.py writes them)
        names = {uid: name for name, uid in UIDS.items()}
        return type("passwd", (), {"pw_name": names[uid]}) if uid in names else real(uid)
    monkeypatch.setattr(tinytorch_exchange.pwd, "getpwuid", getpwuid)
    monkeypatch.setenv("PATH", nbgrader_env()["PATH"])  # nbgrader runs alembic from PATH
    return root


def submit(course: Path, folder_name: str, owner: str, files: dict[str, str]) -> Path:
    """A submission folder in the inbound as the student's server writes it, owned by ``owner``."""
    folder = course.parent / "exchange" / "tt" / "inbound" / folder_name
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
        os.chown(folder / name, UIDS[owner], 100)
    (folder / "timestamp.txt").write_text("2026-11-30 10:00:00.000000 UTC")
    os.chown(folder / "timestamp.txt", UIDS[owner], 100)
    os.chown(folder, UIDS[owner], 100)
    return folder


def collect(course: Path) -> tuple[dict, str]:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config())
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.collect(ASSIGNMENT)
    return result, result.get("log", "") + (result.get("error") or "")


def collected(course: Path, student: str) -> str | None:
    path = course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    return "".join(json.loads(path.read_text())["cells"][0]["source"]) if path.exists() else None


def test_links_special_files_and_forged_owners_are_refused_and_reported(course):
    bob = submit(course, f"bob+{ASSIGNMENT}+2026-11-30 10:00:00.000000 UTC+b0b", "bob",
                 {f"{ASSIGNMENT}.ipynb": notebook("BOB'S OWN WORK")})
    # alice links her notebook to bob's submission; carol to the instructor's source notebook
    alice = submit(course, f"alice+{ASSIGNMENT}+2026-11-30 10:00:01.000000 UTC+a11", "alice", {})
    (alice / f"{ASSIGNMENT}.ipynb").symlink_to(bob / f"{ASSIGNMENT}.ipynb")
    carol = submit(course, f"carol+{ASSIGNMENT}+2026-11-30 10:00:02.000000 UTC+ca7", "carol", {})
    (carol / f"{ASSIGNMENT}.ipynb").symlink_to(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    # dave hard-links bob's file into his folder; erin leaves a FIFO where the notebook should be
    dave = submit(course, f"dave+{ASSIGNMENT}+2026-11-30 10:00:03.000000 UTC+da7", "dave", {})
    os.link(bob / f"{ASSIGNMENT}.ipynb", dave / f"{ASSIGNMENT}.ipynb")
    erin = submit(course, f"erin+{ASSIGNMENT}+2026-11-30 10:00:04.000000 UTC+e11", "erin", {})
    os.mkfifo(erin / f"{ASSIGNMENT}.ipynb")
    # and a folder named after bob that alice owns (a forged, newer submission)
    submit(course, f"bob+{ASSIGNMENT}+2026-11-30 11:00:00.000000 UTC+f0e", "alice",
           {f"{ASSIGNMENT}.ipynb": notebook("ALICE'S FORGERY")})

    result, log = collect(course)
    assert result["success"], log
    assert collected(course, "bob") == "BOB'S OWN WORK", "the honest submission is collected, not the forgery"
    for student in ("alice", "carol", "dave", "erin"):
        assert collected(course, student) is None, f"{student}'s submission was collected:\n{log}"
    assert "is a symbolic link" in log and "claims to come from bob but is owned by alice" in log
    assert "belongs to uid 30002, not to the submitter" in log and "not a regular file or folder" in log
    assert "THE INSTRUCTOR'S SOLUTIONS" not in "".join(p.read_text() for p in (course / "submitted").rglob("*.ipynb"))


def test_a_link_swapped_in_after_the_check_is_not_followed(course, monkeypatch):
    """The copy itself never follows a link: a notebook replaced by a link between the check and the copy
    leaves nothing collected for that student, and the batch goes on."""
    bob = submit(course, f"bob+{ASSIGNMENT}+2026-11-30 10:00:00.000000 UTC+b0b", "bob",
                 {f"{ASSIGNMENT}.ipynb": notebook("BOB'S OWN WORK")})
    alice = submit(course, f"alice+{ASSIGNMENT}+2026-11-30 10:00:01.000000 UTC+a11", "alice",
                   {f"{ASSIGNMENT}.ipynb": notebook("ALICE'S OWN WORK")})
    checked = tinytorch_exchange.OwnerCheckedExchangeCollect.init_src

    def swap_after_check(self):
        checked(self)
        (alice / f"{ASSIGNMENT}.ipynb").unlink()
        (alice / f"{ASSIGNMENT}.ipynb").symlink_to(bob / f"{ASSIGNMENT}.ipynb")
    monkeypatch.setattr(tinytorch_exchange.OwnerCheckedExchangeCollect, "init_src", swap_after_check)
    result, log = collect(course)
    assert result["success"], log
    assert collected(course, "alice") is None and "changed since it was checked" in log, log
    assert collected(course, "bob") == "BOB'S OWN WORK"


def test_deep_folders_are_walked_without_recursion(course):
    """1,200 nested folders (deeper than Python's recursion limit) are checked and collected."""
    folder = submit(course, f"bob+{ASSIGNMENT}+2026-11-30 10:00:00.000000 UTC+b0b", "bob",
                    {f"{ASSIGNMENT}.ipynb": notebook("BOB'S OWN WORK")})
    deep = folder
    try:
        for _ in range(1200):
            deep = deep / "d"
            deep.mkdir()
            os.chown(deep, UIDS["bob"], 100)
        result, log = collect(course)
        assert result["success"], log
        assert collected(course, "bob") == "BOB'S OWN WORK", log
    finally:  # shutil.rmtree (pytest's clean-up of old temporary folders) recurses: remove them with rm
        subprocess.run(["rm", "-rf", str(folder), str(course / "submitted")], check=True)


def collected_at(course: Path, student: str) -> datetime.datetime:
    """The time nbgrader's lateness reads: the collected copy's timestamp.txt."""
    from nbgrader.utils import parse_utc

    return parse_utc((course / "submitted" / student / ASSIGNMENT / "timestamp.txt").read_text())


def test_a_backdated_submission_is_dated_by_its_arrival(course):
    """A student names their folder and writes timestamp.txt as of a year ago: the collected copy is dated when
    the folder arrived (its change time, which no one can set back), and the log says what was claimed."""
    before = datetime.datetime.utcnow()
    submit(course, f"alice+{ASSIGNMENT}+2025-11-30 10:00:00.000000 UTC+a11", "alice",
           {f"{ASSIGNMENT}.ipynb": notebook("ALICE'S LATE WORK")})  # timestamp.txt says 2026-11-30 10:00 too
    result, log = collect(course)
    assert result["success"], log
    assert collected(course, "alice") == "ALICE'S LATE WORK"
    assert before - datetime.timedelta(seconds=2) <= collected_at(course, "alice") <= datetime.datetime.utcnow(), log
    assert "claims 2025-11-30 10:00:00 but arrived at" in log, log
    record = json.loads((course / tinytorch_exchange.ARRIVALS).read_text())
    assert list(record) == [f"alice+{ASSIGNMENT}+2025-11-30 10:00:00.000000 UTC+a11"]


def test_an_arrival_survives_a_restore_and_a_later_change_is_a_later_arrival(course):
    """Restored from a backup (every file written anew, so new change times) a submission keeps the arrival
    recorded before; a file replaced in the folder afterwards makes the submission arrive at that change."""
    name = f"bob+{ASSIGNMENT}+2026-11-30 10:00:00.000000 UTC+b0b"
    folder = submit(course, name, "bob", {f"{ASSIGNMENT}.ipynb": notebook("BOB'S WORK")})
    assert collect(course)[0]["success"]
    first = collected_at(course, "bob")
    time.sleep(1.1)
    saved = course.parent / "saved"
    subprocess.run(["cp", "-a", str(folder), str(saved)], check=True)  # a backup ...
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    subprocess.run(["cp", "-a", str(saved), str(folder)], check=True)  # ... restored: new change times
    assert tinytorch_exchange.last_change(str(folder)) > first.replace(tzinfo=datetime.timezone.utc).timestamp()
    result, log = collect(course)
    assert result["success"], log
    assert collected_at(course, "bob") == first, "the restore moved bob's submission time"
    time.sleep(1.1)
    (folder / f"{ASSIGNMENT}.ipynb").write_text(notebook("BOB'S WORK, CHANGED AFTER THE DUE DATE"))
    result, log = collect(course)
    assert result["success"], log
    assert collected(course, "bob") == "BOB'S WORK, CHANGED AFTER THE DUE DATE"
    assert collected_at(course, "bob") >= first + datetime.timedelta(seconds=2), log
