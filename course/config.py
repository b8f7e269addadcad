"""The course config: the one YAML (or JSON) file that the deploy renders and the hub reads.

The hub's ``hub_config.py`` owns the file's full schema (hub, spawner, culler,
authenticator, ...); the course tooling reads only these keys of it, and ignores
the rest (course/README.md documents them):

    course_id: tinytorch                      # nbgrader course id (hub groups formgrade-<id>, nbgrader-<id>)
    nbgrader:
      course_root: /srv/nbgrader/course       # the course directory: source/, release/, submitted/, ...
      exchange_root: /srv/nbgrader/exchange   # nbgrader's exchange, shared with the students' servers
    roster:
      students: [alice, bob]                  # hub usernames = nbgrader student ids
      tas: [tina]                             # hub usernames of the graders

A missing key takes the default shown.  This file imports only the standard
library and PyYAML (JSON is YAML too), so the hub image can carry it alone: it
must never carry the rest of course/, which holds the solutions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

# The same rule hub_config.py applies to usernames and the course id (Unix user names, hub groups).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
DEFAULT_COURSE_ID = "tinytorch"
DEFAULT_COURSE_ROOT = "/srv/nbgrader/course"
DEFAULT_EXCHANGE_ROOT = "/srv/nbgrader/exchange"
# Not in the shared file: fixed here, each for a reason.
CELL_TIMEOUT = 600  # seconds per cell under nbgrader autograde/validate; notebooks train small models


class ConfigError(Exception):
    """The course config is missing, unreadable or has a bad key; the message names it."""


@dataclass(frozen=True)
class CourseConfig:
    course_id: str = DEFAULT_COURSE_ID
    course_root: str = DEFAULT_COURSE_ROOT
    exchange_root: str = DEFAULT_EXCHANGE_ROOT
    students: tuple[str, ...] = ()
    tas: tuple[str, ...] = ()

    def gradebook_url(self, root: Path | str) -> str:
        """The gradebook lives in the course directory, as nbgrader's default has it."""
        return f"sqlite:///{Path(root).resolve() / 'gradebook.db'}"


def _section(data: dict, key: str, where: str) -> dict:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: '{key}' must be a mapping, got {value!r}")
    return value


def _name(value, key: str, where: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise ConfigError(f"{where}: {key} must be lower-case letters, digits, '_' or '-', starting with a "
                          f"letter, at most 32 characters; got {value!r}")
    return value


def _names(value, key: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {key} must be a list of usernames, got {value!r}")
    names = tuple(_name(v, f"{key}[{i}]", where) for i, v in enumerate(value))
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{where}: {key} lists {', '.join(twice)} more than once")
    return names


def _path(value, key: str, default: str, where: str, base: Path | None) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key} must be a path, got {value!r}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        if base is None:
            raise ConfigError(f"{where}: {key} must be an absolute path, got {value!r}")
        path = (base / path).resolve()
    return str(path)


def parse(data, where: str = "course config", base: Path | None = None) -> CourseConfig:
    """The course tooling's keys of a parsed config file (relative paths resolve against ``base``)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the file must hold a mapping (course_id, nbgrader, roster, ...)")
    nbgrader, roster = _section(data, "nbgrader", where), _section(data, "roster", where)
    course_id = data.get("course_id")
    config = CourseConfig(
        course_id=DEFAULT_COURSE_ID if course_id is None else _name(course_id, "course_id", where),
        course_root=_path(nbgrader.get("course_root"), "nbgrader.course_root", DEFAULT_COURSE_ROOT, where, base),
        exchange_root=_path(nbgrader.get("exchange_root"), "nbgrader.exchange_root", DEFAULT_EXCHANGE_ROOT,
                            where, base),
        students=_names(roster.get("students"), "roster.students", where),
        tas=_names(roster.get("tas"), "roster.tas", where),
    )
    both = sorted(set(config.students) & set(config.tas))
    if both:
        raise ConfigError(f"{where}: {', '.join(both)} listed in both roster.students and roster.tas; pick one")
    return config


def load(path: Path | str | None) -> CourseConfig:
    """Read a course config file; ``None`` gives the defaults."""
    if path is None:
        return CourseConfig()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"course config {path} does not exist") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"course config {path} is not valid YAML or JSON: {error}") from None
    return parse(data, where=str(path), base=path.resolve().parent)


def nbgrader_config(config: CourseConfig, root: Path | str, source: str = "the defaults") -> str:
    """The course directory's ``nbgrader_config.py``: course-level settings only.

    Site-wide settings (the exchange's implementation, the hub's auth plugin) belong
    in ``/etc/jupyter/nbgrader_config.py``, which the deploy writes.
    """
    root = Path(root).resolve()
    return (
        f"# AUTOGENERATED by `python -m course.build nbgrader` from {source}.\n"
        "# Change the course config (course/README.md lists its keys) and rebuild; do not edit here.\n"
        "c = get_config()  # noqa: F821  (nbgrader provides it)\n\n"
        f"c.CourseDirectory.course_id = {config.course_id!r}\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.db_url = {config.gradebook_url(root)!r}\n"
        f"c.Exchange.root = {config.exchange_root!r}\n"
        "# Notebooks train small models: nbgrader's 30 s default per cell is too short.\n"
        f"c.Execute.timeout = {CELL_TIMEOUT}\n"
    )
