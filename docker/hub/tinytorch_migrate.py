"""Move the hub's database or the nbgrader gradebook from its sqlite file into the classroom's PostgreSQL.

    python -m tinytorch_migrate hub|gradebook SQLITE_FILE COURSE_CONFIG

The database to fill is the one the course config names (its ``database`` section; hub_config.py, which the
hub container has where tinytorch_hub_config.py says, makes the URL).

The deploy runs it (deploy/roles/database/tasks/migrate.yml) in a throw-away container of the hub image, with
the hub and the grading agent stopped, when a classroom that kept them in sqlite files is deployed with
PostgreSQL. What it does, all in one PostgreSQL transaction (PostgreSQL's DDL is transactional too), so that
the database holds either everything or nothing:

1. the tables of the application's own models (JupyterHub's and NativeAuthenticator's, or nbgrader's), made
   by SQLAlchemy from those models, so each column gets its PostgreSQL type;
2. every row, read through the same models (sqlite's text dates, 0/1 booleans and JSON come back as Python
   values and go in as PostgreSQL's), table by table in foreign-key order, and alembic's version row, so
   the application finds its schema current;
3. each serial id's sequence moved past the copied ids, the rows counted again on both sides, and a
   marker row naming the sqlite file and its SHA-256.

Then the sqlite file is renamed ``<name>.pre-postgresql`` (kept: the way back, and a backup).

Running it again changes nothing: without the sqlite file there is nothing to move; with the marker of the
same file, only the rename is left. It refuses, changing nothing, when the database already holds other
tables (a hub started on it, another classroom's) or the sqlite file holds a table the models do not
know (its rows would be lost); the message names what and says what to do.
"""
from __future__ import annotations

import hashlib
import sys
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from tinytorch_hub_config import load_hub_config

MARKER = "tinytorch_moved_from_sqlite"
KEPT_SUFFIX = ".pre-postgresql"
# Tables sqlite or alembic keep for themselves: alembic's version is copied on its own, sqlite's is not data.
BOOKKEEPING = {"alembic_version", "sqlite_sequence"}


class MigrationError(RuntimeError):
    """The move cannot be done safely; nothing was changed. The message says why and what to do."""


def models(kind: str) -> list[sa.MetaData]:
    """The SQLAlchemy models whose tables a database of this kind holds."""
    if kind == "hub":
        from jupyterhub import orm
        from nativeauthenticator import orm as native_orm  # the accounts and their password hashes

        # (NativeAuthenticator declares its table on JupyterHub's Base today: one metadata, listed once)
        return list({id(m): m for m in (orm.Base.metadata, native_orm.Base.metadata)}.values())
    if kind == "gradebook":
        from nbgrader import api

        return [api.Base.metadata]
    raise MigrationError(f"unknown database {kind!r}: hub or gradebook")


def target_url(kind: str, source: Path, course_config: Path) -> str:
    """The PostgreSQL URL of the hub's database or the gradebook, as the course config and hub_config.py make it."""
    hub_config = load_hub_config()
    try:
        cfg = hub_config.load_course_config(course_config)
    except hub_config.CourseConfigError as error:
        raise MigrationError(str(error)) from None
    if cfg["database"]["backend"] != "postgresql":
        raise MigrationError(f"{course_config} keeps the databases in sqlite (database.backend): nothing to move to")
    return hub_config.hub_db_url(cfg) if kind == "hub" else hub_config.gradebook_url(cfg, source.parent)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_columns(src: sa.Connection, metadatas: list[sa.MetaData], source: Path) -> dict[str, set[str]]:
    """The sqlite file's tables and their columns, once each is known to fit the models: a table or a column
    the models do not have would be lost, so it stops the move (MigrationError) before PostgreSQL is touched."""
    inspector = sa.inspect(src)
    columns = {name: {column["name"] for column in inspector.get_columns(name)} for name in inspector.get_table_names()}
    known = {name: table for metadata in metadatas for name, table in metadata.tables.items()}
    unknown = sorted(set(columns) - set(known) - BOOKKEEPING)
    if unknown:
        raise MigrationError(f"{source} holds tables the models of this image do not know: {', '.join(unknown)}; "
                             "their rows would be lost, so nothing was moved")
    for name, table in known.items():
        lost = columns.get(name, set()) - set(table.c.keys())
        if lost:
            raise MigrationError(f"{source}: table {name} has columns {', '.join(sorted(lost))} that this image's "
                                 "models do not; deploy the version that wrote the file, then move it. Nothing was moved")
    return columns


def copy_table(src: sa.Connection, dst: sa.Connection, table: sa.Table, source_columns: set[str]) -> int:
    """Every row of ``table`` from sqlite into PostgreSQL, read and written through the model's column types."""
    columns = [column for column in table.c if column.name in source_columns]
    rows = [dict(row) for row in src.execute(sa.select(*columns)).mappings()]
    for start in range(0, len(rows), 1000):
        dst.execute(table.insert(), rows[start:start + 1000])
    return len(rows)


def move_sequences(dst: sa.Connection, table: sa.Table) -> None:
    """A serial id's sequence starts past the copied ids (inserting explicit ids does not move it)."""
    for column in table.primary_key.columns:
        if not isinstance(column.type, sa.Integer):
            continue
        sequence = dst.execute(sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
                               {"table": f'"{table.name}"', "column": column.name}).scalar()
        if sequence:
            highest = dst.execute(sa.select(sa.func.max(column))).scalar()
            dst.execute(sa.text("SELECT setval(:sequence, :value, :called)"),
                        {"sequence": sequence, "value": highest or 1, "called": highest is not None})


def copy_database(src: sa.Connection, dst: sa.Connection, metadatas: list[sa.MetaData], source: Path,
                  source_tables: dict[str, set[str]]) -> dict:
    """Tables, rows, alembic's version and sequences from ``src`` (sqlite; its ``source_tables``, checked) into
    ``dst`` (an empty PostgreSQL database); return the rows copied per table."""
    counts = {}
    for metadata in metadatas:
        metadata.create_all(dst)
        for table in metadata.sorted_tables:
            if table.name in source_tables:
                counts[table.name] = copy_table(src, dst, table, source_tables[table.name])
                move_sequences(dst, table)
    if "alembic_version" in source_tables:
        version = sa.Table("alembic_version", sa.MetaData(),
                           sa.Column("version_num", sa.String(32), primary_key=True))
        version.create(dst)
        counts["alembic_version"] = copy_table(src, dst, version, {"version_num"})
    for name, count in counts.items():  # read back what was written, in the same transaction
        table = sa.table(name)
        copied = dst.execute(sa.select(sa.func.count()).select_from(table)).scalar()
        if copied != count:
            raise MigrationError(f"table {name}: {count} rows in {source}, {copied} in PostgreSQL; nothing was moved")
    return counts


def mark(dst: sa.Connection, source: Path, digest: str, rows: int) -> None:
    marker = sa.Table(MARKER, sa.MetaData(), sa.Column("source", sa.Text), sa.Column("sha256", sa.Text),
                      sa.Column("moved_at", sa.DateTime(timezone=True)), sa.Column("rows", sa.Integer))
    marker.create(dst)
    dst.execute(marker.insert().values(source=str(source), sha256=digest, moved_at=datetime.now(timezone.utc),
                                       rows=rows))


def keep_aside(source: Path) -> Path:
    """Rename the sqlite file (and a journal sqlite left) to ``<name>.pre-postgresql``; never overwrite one."""
    kept = source.with_name(source.name + KEPT_SUFFIX)
    if kept.exists():
        kept = source.with_name(f"{source.name}{KEPT_SUFFIX}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
    for suffix in ("-wal", "-shm", "-journal"):
        journal = source.with_name(source.name + suffix)
        if journal.exists():
            journal.rename(kept.with_name(kept.name + suffix))
    source.rename(kept)
    return kept


def migrate(kind: str, source: Path, url: str) -> str:
    """Move ``source`` into the database at ``url`` (see the module's docstring); return what was done."""
    if not source.exists():
        return f"{kind}: no {source}, nothing to move"
    metadatas = models(kind)
    # Opened read-write, as the application did: a journal a crash left is applied, not ignored.
    sqlite = sa.create_engine(f"sqlite:///{source}")
    postgresql = sa.create_engine(url)
    try:
        with sqlite.connect() as src:  # the whole file read under one transaction: one consistent state
            src.exec_driver_sql("BEGIN")
            digest = sha256(source)
            tables = source_columns(src, metadatas, source)
            with postgresql.begin() as dst:
                there = set(sa.inspect(dst).get_table_names())
                if MARKER in there:
                    moved = dst.execute(sa.text(f"SELECT source, sha256, moved_at FROM {MARKER}")).first()
                    if moved is None or moved.sha256 != digest:
                        raise MigrationError(
                            f"{kind}: PostgreSQL already holds a database moved from {moved.source if moved else '?'}"
                            f" ({moved.moved_at if moved else '?'}), and {source} is not that file: nothing was "
                            f"changed. If {source} is stale, move it away and deploy again.")
                    report = f"{kind}: already moved ({moved.moved_at}); keeping {source} aside"
                elif there:
                    raise MigrationError(
                        f"{kind}: PostgreSQL's database already holds tables ({', '.join(sorted(there)[:5])}...) and "
                        f"{source} still exists: nothing was changed. Either the classroom already runs on "
                        f"PostgreSQL (move {source} away), or restore the database from a backup.")
                else:
                    counts = copy_database(src, dst, metadatas, source, tables)
                    mark(dst, source, digest, sum(counts.values()))
                    report = f"{kind}: moved " + ", ".join(f"{name} {n}" for name, n in counts.items())
    except sa.exc.SQLAlchemyError as error:
        raise MigrationError(f"{kind}: moving {source} failed, nothing was changed: {error}") from None
    finally:
        sqlite.dispose()
        postgresql.dispose()
    return f"{report}; the sqlite file is kept as {keep_aside(source)}"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    kind, source, course_config = argv
    try:
        models(kind)
        print(migrate(kind, Path(source), target_url(kind, Path(source), Path(course_config))))
    except MigrationError as error:
        print(f"tinytorch_migrate: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
