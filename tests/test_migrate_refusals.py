"""docker/hub/tinytorch_migrate.py refuses, before PostgreSQL is opened and changing nothing, a sqlite gradebook
whose rows it could not carry over. The move itself is tried on a deployed classroom (tests/test_deploy_postgres.py)."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sqlite3
import sys
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parent.parent / "docker" / "hub"
NOWHERE = "postgresql+psycopg2://gradebook@/gradebook?host=/nonexistent&passfile=/nonexistent"


@pytest.fixture(scope="module")
def migrate():
    """The hub image's module, loaded from its file (the hub image copies it into its site-packages)."""
    sys.path.insert(0, str(HUB))  # and its tinytorch_hub_config.py beside it
    try:
        spec = importlib.util.spec_from_file_location("tinytorch_migrate", HUB / "tinytorch_migrate.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(HUB))
    return module


@pytest.fixture
def gradebook(tmp_path) -> Path:
    from nbgrader.api import Gradebook

    from autograder.nbgrader_adapter import nbgrader_env
    os.environ["PATH"] = nbgrader_env()["PATH"]  # nbgrader runs `alembic` from PATH
    path = tmp_path / "gradebook.db"
    with Gradebook(f"sqlite:///{path}", "tinytorch") as book:
        book.update_or_create_assignment("01_setup")
        book.update_or_create_student("alice")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_table_the_models_do_not_know_stops_the_move(migrate, gradebook):
    with sqlite3.connect(gradebook) as db:
        db.execute("CREATE TABLE lms_notes (student TEXT, note TEXT)")
    before = digest(gradebook)
    with pytest.raises(migrate.MigrationError, match="tables the models of this image do not know: lms_notes"):
        migrate.migrate("gradebook", gradebook, NOWHERE)
    assert gradebook.is_file() and digest(gradebook) == before  # where it was, as it was


def test_a_column_the_models_do_not_have_stops_the_move(migrate, gradebook):
    with sqlite3.connect(gradebook) as db:
        db.execute("ALTER TABLE student ADD COLUMN pronouns TEXT")
    with pytest.raises(migrate.MigrationError, match="table student has columns pronouns"):
        migrate.migrate("gradebook", gradebook, NOWHERE)
    assert gradebook.is_file()


def test_an_unreachable_database_changes_nothing(migrate, gradebook):
    with pytest.raises(migrate.MigrationError, match="nothing was changed"):
        migrate.migrate("gradebook", gradebook, NOWHERE)
    assert gradebook.is_file() and not list(gradebook.parent.glob("*.pre-postgresql"))
