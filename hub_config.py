"""JupyterHub configuration of TinyTorch Classroom.

Layered like The Littlest JupyterHub's: a few fixed settings, each with its
reason; then ONE course config file that the deploy renders (YAML or JSON,
``$TINYTORCH_COURSE_CONFIG``, default ``/etc/tinytorch/course.yml``), deep-merged
over ``DEFAULTS``, validated against ``SCHEMA`` (unknown keys are errors), and
applied by small ``update_<area>(c, cfg)`` functions that only set values.
Nothing here is hard-coded twice: image names, ports, paths, limits, roster and
secrets' locations all come from that file.

Tests load this file as a module and call ``apply(Config(), cfg)`` without
starting a hub; JupyterHub exec's it with ``get_config`` defined, which runs the
bottom block.

The nbgrader exchange and student identities. nbgrader names a submission after
``getpwuid(getuid())`` and protects the exchange with Unix permissions, so every
student runs under a uid of their own: ``StudentUids`` hands out one per hub user
(persisted, never reused), the spawner passes NB_USER/NB_UID to the student
image, whose entry point creates that passwd entry and drops root. The hub
container gets the same passwd entries, so ``nbgrader collect`` (check_owner)
can tell who really owns a submission.
"""
from __future__ import annotations

import copy
import fcntl
import html
import json
import os
import re
import sys
import time
from pathlib import Path

CONFIG_PATH_ENV = "TINYTORCH_COURSE_CONFIG"
DEFAULT_CONFIG_PATH = "/etc/tinytorch/course.yml"

# Hub, nbgrader and Unix user names: lower case, a letter first. The same rule
# is applied to sign-ups (Authenticator.username_pattern) and to the roster.
USERNAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
COURSE_ID_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"

DEFAULTS: dict = {
    "course_id": "tinytorch",
    "course_title": "TinyTorch",
    "hub": {
        "public_url": "https://localhost",      # what users type; its origin may frame the formgrader
        "bind_url": "https://0.0.0.0:8443",     # where the proxy listens (its own container, or the hub's)
        # The proxy in a container of its own (the deploy's): its API; None: the hub starts one itself.
        "proxy_api_url": None,
        "connect_host": "tinytorch-hub",        # the hub's name on the students' network
        "api_port": 8081,                       # the hub API students' servers talk to
        "data_dir": "/srv/jupyterhub",          # database, uid table (root only)
        "tls_cert": "/etc/tinytorch/tls/hub.crt",
        "tls_key": "/etc/tinytorch/tls/hub.key",
        "cookie_secret_file": "/etc/tinytorch/secrets/cookie_secret",
        "proxy_token_file": "/etc/tinytorch/secrets/proxy_token",
        "api_token_file": "/etc/tinytorch/secrets/api_token",
        # The page services' tokens, one file each: <dir>/formgrader_token, grading_token, progress_token
        "service_tokens_dir": "/etc/tinytorch/secrets",
        "concurrent_spawn_limit": 4,            # servers starting at once; the others wait their turn
        "active_server_limit": 0,               # 0: no limit
    },
    "authenticator": {
        "class": "native",                      # native | oauth | lti13
        "open_signup": False,                   # native: False = an admin approves each sign-up
        "minimum_password_length": 10,
        "options": {},                          # set on the authenticator class as they are
    },
    "spawner": {
        "image": "tinytorch/student:latest",
        "network": "tinytorch-students",
        "container_prefix": "tinytorch-student",  # containers are named <prefix>-<username>
        "mem_limit": "2G",
        "cpu_limit": 1.0,
        "pids_limit": 512,
        "home_dir": "/home/student",
        # Each student's home is the folder <host_path>/<username> on the host (the deploy's students' file
        # system: role student_disk). With a quota, the hub makes it first, a btrfs subvolume limited to it
        # (QuotaHomeSpawner; hub_path: the same folder in the hub, read-only); without, Docker makes a folder.
        "homes": {
            "host_path": "/srv/tinytorch/student-disk/homes",
            "hub_path": None,
            "quota": None,
            "old_volume": None,                 # "<name>-home-{username}": a home from before quotas, moved in
        },
        "start_timeout": 180,
        "http_timeout": 120,
        "first_uid": 20000,                     # students' uids start here, one each, never reused
        "gid": 100,
        "exchange_host_path": "/srv/tinytorch/student-disk/exchange",
        "datasets_host_path": None,             # the course's datasets on the host, or None
        "datasets_dir": "/srv/datasets",        # where students see them, read-only ($TINYTORCH_DATASETS)
        # Students' servers across the nodes of a Docker Swarm (docker/hub/tinytorch_swarm.py): each a service on
        # a node labelled <node_label>=true, its home on the node of its first start (and pinned there), alone on
        # the overlay network <network>-<username> with the hub's and the proxy's containers (hub_container,
        # proxy_container: None when the hub runs its own proxy), where it reaches the hub by its container's name.
        # The exchange and datasets folders must be the same shared folders on every node. With homes.quota, each
        # home is a subvolume with its quota in homes.host_path on its node (the node's own students' file system),
        # made by a one-off Swarm service before the first start (hub_path unused); without, the volume home_volume.
        "swarm": {
            "enabled": False,
            "node_label": "tinytorch.students",
            "home_volume": "tinytorch-home-{username}",
            "hub_container": "tinytorch-hub",
            "proxy_container": None,
        },
    },
    "culler": {
        "enabled": True,
        "timeout": 3600,                        # seconds idle before a server is stopped
        "every": 600,
        "max_age": 0,                           # 0: servers may run as long as they are used
        "concurrency": 10,
    },
    "nbgrader": {
        "exchange_root": "/srv/nbgrader/exchange",  # inside the hub and students' containers
        "course_root": "/srv/nbgrader/course",       # inside the hub container
        "grader_uid": 1999,
        "formgrader_port": 9999,
        "grading_port": 9998,                        # the grading page (/services/grading/)
        "progress_port": 9997,                       # the progress page (/services/progress/)
        "grading_socket": "/run/tinytorch-grading/agent.sock",  # the grading agent, inside the hub container
    },
    "roster": {
        "admins": ["admin"],
        "tas": [],
        "students": [],
        # username -> the person's name ("Alice Example"), from the roster CSV's name column: the course build
        # enters the students' names in the gradebook (formgrader shows them); names of students not on the
        # roster are typed in formgrader (Manage Students).
        "names": {},
    },
    # Due dates: module -> ISO 8601 date and time with its zone ("2026-12-07T23:59:00+01:00"). The course
    # build enters them in the gradebook where it has none yet; after that TAs change them in formgrader.
    "deadlines": {},
    # What a late submission loses, in percent of its autograded score (visible + hidden tests), per day
    # or part of a day after the due date (plus the student's extension) and the grace period, at most
    # max_percent. Written answers are graded by hand, knowing the lateness.
    "late_policy": {
        "grace_minutes": 15,
        "percent_per_day": 10,
        "max_percent": 50,
    },
    # Where the hub's database and the nbgrader gradebook live. sqlite: files (hub.data_dir/jupyterhub.sqlite,
    # the course directory's gradebook.db). postgresql: two databases of the classroom's PostgreSQL, reached
    # only through its Unix socket in socket_dir (the same path in every container and on the host), each
    # with its own role and password, read by libpq from a password file (never in a URL or a log).
    "database": {
        "backend": "sqlite",                    # sqlite | postgresql
        "socket_dir": None,                     # postgresql: the folder of the server's socket
        "hub_passfile": None,                   # postgresql: the hub's role's password file (root only)
        "gradebook_passfile": None,             # postgresql: the gradebook's role's (the course's grader's)
    },
}

_NAME = {"type": "string", "pattern": USERNAME_PATTERN}
_NAMES = {"type": "array", "items": _NAME, "uniqueItems": True}
_PATH = {"type": "string", "pattern": "^/"}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_SIZE = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?[KMGT]?$"}


def _object(properties: dict, required: bool = True) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "required": list(properties) if required else []}


SCHEMA: dict = _object({
    "course_id": {"type": "string", "pattern": COURSE_ID_PATTERN},
    "course_title": {"type": "string", "minLength": 1},
    "hub": _object({
        "public_url": {"type": "string", "pattern": "^https?://[^/]+"},
        "bind_url": {"type": "string", "pattern": "^https?://[^/]+:[0-9]+$"},
        "proxy_api_url": {"anyOf": [{"type": "string", "pattern": "^http://[^/]+:[0-9]+$"}, {"type": "null"}]},
        "connect_host": {"type": "string", "minLength": 1},
        "api_port": _PORT,
        "data_dir": _PATH,
        "tls_cert": {"anyOf": [_PATH, {"type": "null"}]},
        "tls_key": {"anyOf": [_PATH, {"type": "null"}]},
        "cookie_secret_file": _PATH,
        "proxy_token_file": _PATH,
        "api_token_file": _PATH,
        "service_tokens_dir": _PATH,
        "concurrent_spawn_limit": {"type": "integer", "minimum": 1},
        "active_server_limit": {"type": "integer", "minimum": 0},
    }),
    "authenticator": _object({
        "class": {"enum": ["native", "oauth", "lti13"]},
        "open_signup": {"type": "boolean"},
        "minimum_password_length": {"type": "integer", "minimum": 8},
        "options": {"type": "object"},
    }),
    "spawner": _object({
        "image": {"type": "string", "pattern": r"^[a-z0-9./_-]+(:[A-Za-z0-9._-]+)?$"},
        "network": {"type": "string", "minLength": 1},
        "container_prefix": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_.-]*$"},
        "mem_limit": _SIZE,
        "cpu_limit": {"type": "number", "exclusiveMinimum": 0},
        "pids_limit": {"type": "integer", "minimum": 64},
        "home_dir": _PATH,
        "homes": _object({
            "host_path": _PATH,
            "hub_path": {"anyOf": [_PATH, {"type": "null"}]},
            "quota": {"anyOf": [{"type": "string", "pattern": "^[0-9]+[KMGT]$"}, {"type": "null"}]},
            "old_volume": {"anyOf": [{"type": "string", "pattern": r"\{username\}"}, {"type": "null"}]},
        }),
        "start_timeout": {"type": "integer", "minimum": 10},
        "http_timeout": {"type": "integer", "minimum": 10},
        "first_uid": {"type": "integer", "minimum": 10000, "maximum": 2000000000},
        "gid": {"type": "integer", "minimum": 1},
        "exchange_host_path": _PATH,
        "datasets_host_path": {"anyOf": [_PATH, {"type": "null"}]},
        "datasets_dir": _PATH,
        "swarm": _object({
            "enabled": {"type": "boolean"},
            "node_label": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]*$"},
            "home_volume": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_.-]*\{username\}[a-z0-9_.-]*$"},
            "hub_container": {"type": "string", "pattern": r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"},
            "proxy_container": {"anyOf": [{"type": "string", "pattern": r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"},
                                          {"type": "null"}]},
        }),
    }),
    "culler": _object({
        "enabled": {"type": "boolean"},
        "timeout": {"type": "integer", "minimum": 60},
        "every": {"type": "integer", "minimum": 10},
        "max_age": {"type": "integer", "minimum": 0},
        "concurrency": {"type": "integer", "minimum": 1},
    }),
    "nbgrader": _object({
        "exchange_root": _PATH,
        "course_root": _PATH,
        "grader_uid": {"type": "integer", "minimum": 1000, "maximum": 9999},
        "formgrader_port": _PORT,
        "grading_port": _PORT,
        "progress_port": _PORT,
        "grading_socket": _PATH,
    }),
    "roster": _object({"admins": _NAMES, "tas": _NAMES, "students": _NAMES,
                       "names": {"type": "object", "propertyNames": _NAME,
                                 "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 200,
                                                          "pattern": r"^[^\x00-\x1f\x7f]+$"}}}),
    "deadlines": {"type": "object", "additionalProperties": False,
                  "patternProperties": {r"^[0-9]{2}_[a-z0-9_]+$": {"type": "string", "minLength": 10}}},
    "late_policy": _object({
        "grace_minutes": {"type": "number", "minimum": 0},
        "percent_per_day": {"type": "number", "minimum": 0, "maximum": 100},
        "max_percent": {"type": "number", "minimum": 0, "maximum": 100},
    }),
    "database": _object({
        "backend": {"enum": ["sqlite", "postgresql"]},
        "socket_dir": {"anyOf": [_PATH, {"type": "null"}]},
        "hub_passfile": {"anyOf": [_PATH, {"type": "null"}]},
        "gradebook_passfile": {"anyOf": [_PATH, {"type": "null"}]},
    }),
})

AUTHENTICATORS = {
    "native": "tinytorch_auth.ApprovedNativeAuthenticator",  # the admin approves every sign-up
    "oauth": "oauthenticator.generic.GenericOAuthenticator",
    "lti13": "ltiauthenticator.lti13.authenticator.LTI13Authenticator",
}


class CourseConfigError(ValueError):
    """The course config file is missing, unreadable or invalid; the message says where."""


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` over ``base``, recursively for dicts; neither is modified."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "options":
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def validate(cfg: dict, source: str = "course config") -> dict:
    """Check ``cfg`` (already merged over DEFAULTS); raise CourseConfigError naming every bad key."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = []
    for error in sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        problems.append(f"{where}: {error.message}")
    if not problems:
        roster = cfg["roster"]
        both = sorted(set(roster["students"]) & set(roster["tas"]))
        if both:
            problems.append(f"roster: {', '.join(both)} listed as both student and TA; pick one")
        if not roster["admins"]:
            problems.append("roster.admins: at least one admin is needed to approve sign-ups")
        unnamed = sorted(set(roster["names"]) - set(roster["students"]) - set(roster["tas"]) - set(roster["admins"]))
        if unnamed:
            problems.append(f"roster.names: {', '.join(unnamed)} not on the roster")
        if cfg["hub"]["tls_cert"] and not cfg["hub"]["bind_url"].startswith("https://"):
            problems.append("hub.bind_url: must be https:// when hub.tls_cert is set")
        if bool(cfg["hub"]["tls_cert"]) != bool(cfg["hub"]["tls_key"]):
            problems.append("hub.tls_cert and hub.tls_key: set both or neither")
        homes = cfg["spawner"]["homes"]
        swarm = cfg["spawner"]["swarm"]
        if homes["quota"] and not homes["hub_path"] and not swarm["enabled"]:
            problems.append("spawner.homes.quota: needs spawner.homes.hub_path (where the hub sees the homes)")
        if swarm["enabled"]:
            # Each student's network holds the hub's and the proxy's containers: their names resolve to an address
            # on every one of those networks, which goes when that student's server stops.
            proxy = cfg["hub"]["proxy_api_url"]
            if cfg["hub"]["connect_host"] in (swarm["hub_container"], swarm["proxy_container"]):
                problems.append("hub.connect_host: with spawner.swarm.enabled, an address only the hub has (its "
                                "fixed IP on its own network), not a container's name")
            if proxy and proxy.split("://", 1)[1].rsplit(":", 1)[0] in (swarm["hub_container"],
                                                                     swarm["proxy_container"]):
                problems.append("hub.proxy_api_url: with spawner.swarm.enabled, the proxy's fixed IP on the hub's "
                                "network, not a container's name")
        problems += [f"deadlines.{module}: {problem}" for module, when in cfg["deadlines"].items()
                     if (problem := deadline_problem(when))]
        if cfg["database"]["backend"] == "postgresql":
            problems += [f"database.{key}: required when database.backend is postgresql"
                         for key in ("socket_dir", "hub_passfile", "gradebook_passfile") if not cfg["database"][key]]
    if problems:
        raise CourseConfigError(f"{source} is invalid:\n  " + "\n  ".join(problems))
    return cfg


def deadline_problem(when: str) -> str:
    """What is wrong with a due date of the course config ("" when it is a date and time with its zone)."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(when)
    except ValueError:
        return f"{when!r} is not an ISO 8601 date and time (like 2026-12-07T23:59:00+01:00)"
    return "" if moment.tzinfo is not None else f"{when!r} has no time zone (add +00:00, or Z)"


def load_course_config(path: str | os.PathLike | None) -> dict:
    """Read the course config (YAML or JSON), merge it over DEFAULTS and validate it; ``None``: the defaults.

    The one reader of the course config: the hub (below), the course directory's build and the
    autograder (autograder/coursedir.py) all call it.
    """
    import yaml

    if path is None:
        return validate(copy.deepcopy(DEFAULTS), source="the default course config")
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CourseConfigError(f"course config {path} not found (set ${CONFIG_PATH_ENV} or run the deploy)") from None
    except yaml.YAMLError as error:
        raise CourseConfigError(f"course config {path} is not valid YAML/JSON: {error}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CourseConfigError(f"course config {path} must hold a mapping, not {type(raw).__name__}")
    return validate(deep_merge(DEFAULTS, raw), source=f"course config {path}")


# The classroom's PostgreSQL databases and their roles (deploy/roles/database creates them): one each, so
# that the course's grader (TAs' formgrader terminal included) can open the gradebook and not the hub's.
HUB_DATABASE = "jupyterhub"
GRADEBOOK_DATABASE = "gradebook"


def postgresql_url(database: str, socket_dir: str, passfile: str) -> str:
    """A SQLAlchemy URL of one of the classroom's databases, through its Unix socket; the role is named after
    the database, and libpq reads its password from ``passfile``, so the URL holds no secret."""
    return f"postgresql+psycopg2://{database}@/{database}?host={socket_dir}&passfile={passfile}"


def hub_db_url(cfg: dict) -> str:
    """The hub's database (JupyterHub, NativeAuthenticator's accounts)."""
    db = cfg["database"]
    if db["backend"] == "postgresql":
        return postgresql_url(HUB_DATABASE, db["socket_dir"], db["hub_passfile"])
    return f"sqlite:///{cfg['hub']['data_dir']}/jupyterhub.sqlite"


def gradebook_url(cfg: dict, course_root: str | os.PathLike) -> str:
    """The nbgrader gradebook: ``gradebook.db`` in the course directory (nbgrader's own default place), or the
    classroom's PostgreSQL database (the same URL wherever the course directory is mounted)."""
    db = cfg["database"]
    if db["backend"] == "postgresql":
        return postgresql_url(GRADEBOOK_DATABASE, db["socket_dir"], db["gradebook_passfile"])
    return sqlite_gradebook_url(course_root)


def sqlite_gradebook_url(course_root: str | os.PathLike) -> str:
    return f"sqlite:///{Path(course_root).resolve() / 'gradebook.db'}"


def grader_user(cfg: dict) -> str:
    """The Unix user that owns the course directory and runs the formgrader service."""
    return f"grader-{cfg['course_id']}"


# --------------------------------------------------------------------------- identities

class StudentUids:
    """One Unix uid per hub user, kept in a JSON file; a uid is never given to anyone else."""

    def __init__(self, path: str | os.PathLike, first_uid: int):
        self.path = Path(path)
        self.first_uid = first_uid

    def read(self) -> dict[str, int]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def uid_for(self, username: str) -> int:
        if not re.match(USERNAME_PATTERN, username):
            raise ValueError(f"user name {username!r} does not match {USERNAME_PATTERN}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            uids = self.read()
            if username not in uids:
                uids[username] = max([self.first_uid - 1, *uids.values()]) + 1
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(uids, indent=1, sort_keys=True))
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            return uids[username]


def passwd_line(name: str, uid: int, gid: int, home: str) -> str:
    return f"{name}:x:{uid}:{gid}::{home}:/usr/sbin/nologin\n"


def ensure_passwd_entries(entries: dict[str, int], gid: int, home: str, passwd: str = "/etc/passwd") -> None:
    """Add ``name -> uid`` entries to a passwd file, replacing stale lines for those names or uids."""
    path = Path(passwd)
    with open(path.with_name(".passwd.tinytorch.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lines = path.read_text().splitlines(keepends=True)
        wanted = {name: uid for name, uid in entries.items()}
        kept = []
        for line in lines:
            fields = line.split(":")
            if len(fields) > 2 and (fields[0] in wanted or fields[2] in {str(u) for u in wanted.values()}):
                if line == passwd_line(fields[0], int(fields[2]), gid, home) and wanted.get(fields[0]) == int(fields[2]):
                    kept.append(line)
                    wanted.pop(fields[0])
                continue
            kept.append(line)
        if len(kept) == len(lines) and not wanted:
            return
        kept += [passwd_line(name, uid, gid, home) for name, uid in wanted.items()]
        path.write_text("".join(kept))


def prepare_hub_container(cfg: dict) -> None:
    """Inside the hub container (as root): the grader user and every student's passwd entry."""
    grader = grader_user(cfg)
    home = cfg["nbgrader"]["course_root"]
    ensure_passwd_entries({grader: cfg["nbgrader"]["grader_uid"]}, cfg["spawner"]["gid"], home)
    uids = StudentUids(Path(cfg["hub"]["data_dir"]) / "student-uids.json", cfg["spawner"]["first_uid"])
    ensure_passwd_entries(uids.read(), cfg["spawner"]["gid"], cfg["spawner"]["home_dir"])


def make_pre_spawn_hook(cfg: dict, in_container: bool):
    uids = StudentUids(Path(cfg["hub"]["data_dir"]) / "student-uids.json", cfg["spawner"]["first_uid"])

    def pre_spawn_hook(spawner) -> None:
        """Give the student's container its own uid (see the module docstring)."""
        name = spawner.user.name
        uid = uids.uid_for(name)
        spawner.environment["NB_USER"] = name
        spawner.environment["NB_UID"] = str(uid)
        if in_container:
            ensure_passwd_entries({name: uid}, cfg["spawner"]["gid"], cfg["spawner"]["home_dir"])

    return pre_spawn_hook


# --------------------------------------------------------------------------- update_<area>

def update_network_and_tls(c, cfg: dict) -> None:
    hub = cfg["hub"]
    c.JupyterHub.bind_url = hub["bind_url"]
    # The hub API listens on every address of the hub container: the students'
    # servers reach it by the container's name on their network.
    c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{hub['api_port']}"
    c.JupyterHub.hub_connect_url = f"http://{hub['connect_host']}:{hub['api_port']}"
    if hub["tls_cert"]:
        c.JupyterHub.ssl_cert = hub["tls_cert"]
        c.JupyterHub.ssl_key = hub["tls_key"]
    c.JupyterHub.db_url = hub_db_url(cfg)
    c.JupyterHub.pid_file = f"{hub['data_dir']}/jupyterhub.pid"
    c.JupyterHub.cookie_secret_file = hub["cookie_secret_file"]
    # A hub restart (a redeploy with a new config, dockerd restarting, a crash) must not stop the students'
    # servers: their kernels keep their state, and the restarted hub finds them (DockerSpawner keeps each
    # container's id in the hub's database) and routes to them again.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.active_server_limit = hub["active_server_limit"]
    # Secure cookies need https; behind plain http (tests without TLS) they would never be sent. JupyterHub reads
    # them from its Tornado settings (for its login cookie and, by default, its XSRF cookie); it has no
    # JupyterHub.cookie_options (set there, it only logged "not recognized" and the XSRF cookie had neither).
    c.JupyterHub.tornado_settings = {"cookie_options": {"secure": hub["bind_url"].startswith("https://"),
                                                        "samesite": "Lax"}}


def update_secrets(c, cfg: dict) -> None:
    """Secrets are files the deploy generates on the host; read them, never store them here."""
    hub = cfg["hub"]
    c.ConfigurableHTTPProxy.auth_token = _read_secret(hub["proxy_token_file"])


def update_proxy(c, cfg: dict) -> None:
    """With ``hub.proxy_api_url`` the proxy runs in a container of its own (the deploy starts it, with TLS): it
    keeps its routes and the students' open connections (a notebook's kernel websocket) while the hub
    restarts, and the restarted hub checks the routes and adds what is missing."""
    if cfg["hub"]["proxy_api_url"]:
        c.ConfigurableHTTPProxy.should_start = False
        c.ConfigurableHTTPProxy.api_url = cfg["hub"]["proxy_api_url"]


def _read_secret(path: str) -> str:
    try:
        value = Path(path).read_text().strip()
    except FileNotFoundError:
        raise CourseConfigError(f"secret file {path} is missing: the deploy generates it (run the deploy)") from None
    if len(value) < 32:
        raise CourseConfigError(f"secret file {path} holds fewer than 32 characters: regenerate it")
    return value


def who_may_log_in(cfg: dict) -> dict:
    """The Authenticator's settings of who may log in: the roster's names, or (no roster) anyone who signs up."""
    roster = cfg["roster"]
    settings: dict = {"blocked_users": {grader_user(cfg)}}  # the formgrader's identity, never a login
    if roster["tas"] or roster["students"]:
        settings["allowed_users"] = set(roster["admins"]) | set(roster["tas"]) | set(roster["students"])
    else:
        # No roster yet: anyone may ask for an account; with NativeAuthenticator an
        # admin still approves each one (open_signup false).
        settings["allow_all"] = True
    return settings


def login_greeting(cfg: dict) -> str:
    """The line above the login form: the course's title and how a newcomer gets in (HTML: the hub shows it as is)."""
    roster, auth = cfg["roster"], cfg["authenticator"]
    if auth["class"] != "native":
        how = "sign in with your school account."
    elif roster["tas"] or roster["students"]:
        how = "sign in with the account your course staff gave you."
    elif auth["open_signup"]:
        how = "new here? Sign up first, then sign in."
    else:
        how = "new here? Sign up first; you can sign in once the course staff have approved you."
    return f"<strong>{html.escape(cfg['course_title'])}</strong>: {how}"


def update_auth(c, cfg: dict) -> None:
    auth = cfg["authenticator"]
    roster = cfg["roster"]
    c.JupyterHub.template_vars = {"announcement_login": login_greeting(cfg)}
    c.JupyterHub.authenticator_class = AUTHENTICATORS[auth["class"]]
    c.Authenticator.username_pattern = USERNAME_PATTERN
    c.Authenticator.admin_users = set(roster["admins"])
    for key, value in who_may_log_in(cfg).items():
        setattr(c.Authenticator, key, value)
    if auth["class"] == "native":
        c.ApprovedNativeAuthenticator.student_group = f"nbgrader-{cfg['course_id']}"
        c.ApprovedNativeAuthenticator.ta_group = f"formgrade-{cfg['course_id']}"
        c.ApprovedNativeAuthenticator.enrol_on_approval = not (roster["tas"] or roster["students"])
        c.NativeAuthenticator.open_signup = auth["open_signup"]
        c.NativeAuthenticator.minimum_password_length = auth["minimum_password_length"]
        c.NativeAuthenticator.check_common_password = True
    section = AUTHENTICATORS[auth["class"]].rsplit(".", 1)[1]
    for key, value in auth["options"].items():
        setattr(c[section], key, value)


# A student's container: the capabilities start-student.sh needs as root (make the student's passwd entry, hand
# over a new home, drop to the student's uid); what the student writes outside their home stays in memory, within
# mem_limit (folder -> size); their server's log is bounded: nothing of theirs grows on the host's disk.
STUDENT_CAPABILITIES = ["CHOWN", "SETUID", "SETGID", "FOWNER", "DAC_OVERRIDE"]
STUDENT_TMPFS = {"/tmp": "512m", "/var/tmp": "64m", "/run/lock": "1m"}
STUDENT_LOG = {"max-size": "10m", "max-file": "2"}
STUDENT_IMAGE_CMD = ["jupyterhub-singleuser"]  # the student image's CMD (docker/student/Dockerfile)


def update_spawner(c, cfg: dict, in_container: bool = False) -> None:
    sp = cfg["spawner"]
    nbg = cfg["nbgrader"]
    # At most hub.concurrent_spawn_limit servers start at once; the others wait their turn, told on the
    # spawn-pending page how many are ahead (docker/hub/tinytorch_start.py), not JupyterHub's 429 "Too many users".
    c.JupyterHub.spawner_class = "tinytorch_start.QueuedDockerSpawner"
    c.JupyterHub.concurrent_spawn_limit = 0
    c.QueuedStart.starts_at_once = cfg["hub"]["concurrent_spawn_limit"]
    homes = sp["homes"]
    if homes["quota"] and not sp["swarm"]["enabled"]:  # the same, each home first made a btrfs subvolume with its quota
        c.JupyterHub.spawner_class = "tinytorch_homes.QuotaHomeSpawner"
        c.QuotaHomeSpawner.homes_host_path = homes["host_path"]
        c.QuotaHomeSpawner.homes_hub_path = homes["hub_path"]
        c.QuotaHomeSpawner.home_quota = homes["quota"]
        c.QuotaHomeSpawner.old_home_volume = homes["old_volume"] or ""
    c.DockerSpawner.image = sp["image"]
    c.DockerSpawner.allowed_images = [sp["image"]]  # users cannot pick another image
    c.DockerSpawner.network_name = sp["network"]
    c.DockerSpawner.use_internal_ip = True
    c.DockerSpawner.prefix = sp["container_prefix"]
    c.DockerSpawner.name_template = "{prefix}-{username}"
    c.DockerSpawner.remove = True                   # the container goes, the home volume stays
    c.DockerSpawner.pull_policy = "never"           # images are built by the deploy, not pulled
    c.DockerSpawner.notebook_dir = sp["home_dir"]
    # The student's home (a folder on the host, or on a swarm on the node: a volume there without a quota), then the
    # folders every student shares. DockerSpawner fills {username} with the escaped name (mary_k -> mary-5fk): the
    # spawners make the home under that name too (docker/hub/).
    home = (sp["swarm"]["home_volume"] if sp["swarm"]["enabled"] and not homes["quota"]
            else homes["host_path"] + "/{username}")
    c.DockerSpawner.volumes = {
        home: sp["home_dir"],
        sp["exchange_host_path"]: {"bind": nbg["exchange_root"], "mode": "rw"},
    }
    environment = {"NBGRADER_EXCHANGE_ROOT": nbg["exchange_root"], "NB_GID": str(sp["gid"]), "HOME": sp["home_dir"]}
    if sp["datasets_host_path"]:  # MNIST and Tiny Shakespeare for module 10 and the milestones
        c.DockerSpawner.volumes[sp["datasets_host_path"]] = {"bind": sp["datasets_dir"], "mode": "ro"}
        environment["TINYTORCH_DATASETS"] = sp["datasets_dir"]
    c.DockerSpawner.environment = environment
    c.DockerSpawner.mem_limit = sp["mem_limit"]
    c.DockerSpawner.cpu_limit = sp["cpu_limit"]
    # The container starts as root only so that start-student.sh can create the
    # student's passwd entry and chown a new home volume; it then drops to the
    # student's uid with no capabilities and no-new-privileges.
    c.DockerSpawner.extra_create_kwargs = {"user": "root"}
    c.DockerSpawner.extra_host_config = {
        "cap_drop": ["ALL"],
        "cap_add": STUDENT_CAPABILITIES,
        "security_opt": ["no-new-privileges"],
        "pids_limit": sp["pids_limit"],
        "tmpfs": {path: f"size={size},mode=1777" for path, size in STUDENT_TMPFS.items()},
        "log_config": {"type": "json-file", "config": STUDENT_LOG},
    }
    if sp["swarm"]["enabled"]:
        update_swarm_spawner(c, cfg)
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = sp["start_timeout"]
    c.Spawner.http_timeout = sp["http_timeout"]
    # The assignment list asks the hub which nbgrader-<course> groups the student is in.
    c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server",
                                     "read:users:groups!user", "read:users:name!user"]
    c.Spawner.pre_spawn_hook = make_pre_spawn_hook(cfg, in_container)


def update_swarm_spawner(c, cfg: dict) -> None:
    """The same servers as Swarm services on the nodes (docker/hub/tinytorch_swarm.py says how each limit and
    the isolation carry over); the settings above that name a container (extra_host_config) do not apply."""
    sp, swarm = cfg["spawner"], cfg["spawner"]["swarm"]
    c.JupyterHub.spawner_class = "tinytorch_swarm.StudentSwarmSpawner"
    s = c.StudentSwarmSpawner
    s.node_label = swarm["node_label"]
    s.pull_policy = "skip"  # each node has the image (the deploy builds or loads it there), the manager may not
    s.cmd = STUDENT_IMAGE_CMD  # DockerSpawner reads it from the image, which the manager may not have
    # Joined to each student's network: the hub (students' servers call its API, by its name there) and, when it
    # has a container of its own, the proxy (which forwards users to the servers).
    s.attach = [swarm["hub_container"]] + ([swarm["proxy_container"]] if swarm["proxy_container"] else [])
    s.hub_connect_url = f"http://{swarm['hub_container']}:{cfg['hub']['api_port']}"
    s.pids_limit = sp["pids_limit"]
    s.tmpfs = STUDENT_TMPFS
    if sp["homes"]["quota"]:  # each home a subvolume with its quota on its node, made by a one-off Swarm service
        s.home_quota = sp["homes"]["quota"]
        s.homes_host_path = sp["homes"]["host_path"]
        s.old_home_volume = sp["homes"]["old_volume"] or ""
    s.extra_create_kwargs = {}  # DockerSpawner's (user root) is a container's; a service's is in its container spec
    s.extra_container_spec = {"user": "root", "cap_drop": ["ALL"], "cap_add": STUDENT_CAPABILITIES}
    s.extra_task_spec = {"log_driver": {"Name": "json-file", "Options": STUDENT_LOG}}
    # The service's name resolves to its one task's address: no virtual IP, whose load balancer (IPVS) a server of
    # one replica does not need, and which kernels without ip_vs cannot route.
    s.extra_endpoint_spec = {"mode": "dnsrr"}


def known_users(cfg: dict, wait: float = 120) -> set[str]:
    """The users in the hub's database; none before the hub's first start (no database, or no users table).

    A database that cannot be read is an error, never "nobody": the roster would enrol again every name an
    admin has removed. PostgreSQL may still be starting beside the hub: it is asked again for ``wait`` s."""
    if cfg["database"]["backend"] == "postgresql":
        import sqlalchemy

        engine = sqlalchemy.create_engine(hub_db_url(cfg))
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    with engine.connect() as db:
                        if not sqlalchemy.inspect(db).has_table("users"):
                            return set()
                        return {name for (name,) in db.execute(sqlalchemy.text("SELECT name FROM users"))}
                except sqlalchemy.exc.OperationalError as error:
                    if time.monotonic() >= deadline:
                        raise CourseConfigError(f"the hub's database cannot be read after {wait:.0f} s: "
                                                f"{str(error.orig).strip()}") from None
                    time.sleep(1)
        finally:
            engine.dispose()
    import sqlite3

    database = Path(cfg["hub"]["data_dir"]) / "jupyterhub.sqlite"
    if not database.is_file():
        return set()
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=wait) as db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users'").fetchone():
                return set()
            return {name for (name,) in db.execute("SELECT name FROM users")}
    except sqlite3.Error as error:
        raise CourseConfigError(f"the hub's database {database} cannot be read: {error}") from None


def course_groups(cfg: dict, seen: set[str]) -> dict:
    """Who is a student and who a TA lives in the hub's database: its groups ``nbgrader-<course>`` and
    ``formgrade-<course>``, which the admin edits on the hub's admin page (Groups) and which a restart or a
    redeploy never changes. The roster only enrols names the hub has not ``seen`` yet (a new row of the CSV,
    on the next deploy); sign-ups without a roster become students when approved (tinytorch_auth.py)."""
    course, roster = cfg["course_id"], cfg["roster"]
    return {
        # (The formgrader's own user, the grader, is blocked from logging in, and JupyterHub keeps a blocked
        # user out of every group: the formgrader knows its course from TINYTORCH_COURSE_ID instead.)
        f"formgrade-{course}": {"users": sorted(set(roster["tas"]) - seen)},
        f"nbgrader-{course}": {"users": sorted(set(roster["students"]) - seen)},
    }


def course_roles(cfg: dict) -> list[dict]:
    """What the course's groups and the hub's services may do."""
    course = cfg["course_id"]
    roles = [
        {"name": f"formgrade-{course}", "groups": [f"formgrade-{course}"],
         "scopes": [f"access:services!service={course}", "list:services", f"read:services!service={course}",
                    "access:services!service=grading", "read:services!service=grading"]},
        {"name": f"nbgrader-{course}", "groups": [f"nbgrader-{course}"],
         "scopes": ["list:services", f"read:services!service={course}",
                    "access:services!service=progress", "read:services!service=progress"]},
        {"name": f"{course}-tas-see-progress", "groups": [f"formgrade-{course}"],
         "scopes": ["access:services!service=progress", "read:services!service=progress"]},
        # The progress page asks the hub whether its visitor is a TA (their groups) or an admin.
        {"name": "progress-page", "services": ["progress"], "scopes": ["read:users"]},
        {"name": f"{course}-formgrader-service", "services": [course],
         "scopes": ["list:users", "read:users", f"groups!group=nbgrader-{course}", "read:groups"]},
        # The deploy's own token (tests, roster sync, health checks).
        {"name": "tinytorch-deploy", "services": ["tinytorch-deploy"],
         "scopes": ["admin:users", "admin:servers", "access:servers", "list:users", "read:users",
                    "admin:groups", "list:services", "read:services", "tokens"]},
    ]
    if cfg["culler"]["enabled"]:  # a role naming a service the hub does not have stops the hub at its start
        roles.append({"name": "idle-culler", "services": ["idle-culler"],
                      "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})
    return roles


def update_groups_and_roles(c, cfg: dict) -> None:
    c.JupyterHub.load_groups = course_groups(cfg, known_users(cfg))
    c.JupyterHub.load_roles = course_roles(cfg)


# The page services: the formgrader (TAs' JupyterLab at /services/<course>/), the grading page and the progress
# page. The hub container's supervisor (docker/hub/supervisord.conf) runs each beside JupyterHub as the course's
# grader, in the course directory (docker/hub/tinytorch_service.py), and starts again one that exits; JupyterHub
# knows them as external services. (JupyterHub stops itself when a service it manages does not answer within
# about 10 s, which the formgrader's JupyterLab can take on a loaded host: the hub then restarted over and over.)
# The proxy, in a container of its own, reaches them by the hub's name (connect_host). On one host they listen on
# all the hub container's addresses, and the students' bridge's rules open only the hub API port to students. On a
# swarm the hub also joins every running student's network, where no such rule applies: there they listen only on
# the hub's fixed address on its own network (connect_host), which no student's network reaches.
PAGE_SERVICES = ("formgrader", "grading", "progress")


def page_services_ip(cfg: dict) -> str:
    """The address the page services listen on (above)."""
    return cfg["hub"]["connect_host"] if cfg["spawner"]["swarm"]["enabled"] else "0.0.0.0"


def page_services(cfg: dict) -> dict[str, dict]:
    """Each page service by its role: its hub name, port, command and own environment."""
    course, nbg, listen_ip = cfg["course_id"], cfg["nbgrader"], page_services_ip(cfg)
    origin = "/".join(cfg["hub"]["public_url"].split("/", 3)[:3])  # scheme://host[:port], as SCHEMA checked

    def page(name: str) -> dict:
        # docker/hub/tinytorch_grading.py: the grading page asks the grading agent (autograder/agent.py) over a
        # socket only the grader's uid may open; the progress page is the same program.
        return {"name": name, "port": nbg[f"{name}_port"], "command": [sys.executable, "-m", "tinytorch_grading"],
                "environment": {"TINYTORCH_GRADING_SOCKET": nbg["grading_socket"], "TINYTORCH_COURSE_ID": course,
                                "TINYTORCH_COURSE_TITLE": cfg["course_title"], "TINYTORCH_PAGE": name,
                                "TINYTORCH_LISTEN_IP": listen_ip}}

    return {
        "formgrader": {
            "name": course, "port": nbg["formgrader_port"],
            "command": ["jupyterhub-singleuser", f"--port={nbg['formgrader_port']}", f"--ip={listen_ip}"],
            "environment": {
                "JUPYTERHUB_DEFAULT_URL": "/lab",
                "NBGRADER_EXCHANGE_ROOT": nbg["exchange_root"],
                "TINYTORCH_COURSE_ID": course,  # its course (tinytorch_exchange.FormgraderAuthPlugin)
                # JupyterLab shows the formgrader in an iframe: the hub image's
                # jupyter_server_config.py sends this as CSP frame-ancestors.
                "TINYTORCH_FRAME_ANCESTORS": f"'self' {origin}",
            },
        },
        "grading": page("grading"),
        "progress": page("progress"),
    }


def page_service_url(cfg: dict, service: dict) -> str:
    """Where a page service listens, on the hub container (the proxy reaches it by the hub's name)."""
    return f"http://{cfg['hub']['connect_host']}:{service['port']}"


def page_service_token(cfg: dict, role: str) -> str:
    return _read_secret(str(Path(cfg["hub"]["service_tokens_dir"]) / f"{role}_token"))


def page_service_process(cfg: dict, role: str) -> dict:
    """What the supervisor's launcher runs for one page service: the command, as whom, where, and the whole
    environment (what JupyterHub gives a service it starts itself, and the service's own)."""
    if role not in PAGE_SERVICES:
        raise CourseConfigError(f"no page service {role!r}: one of {', '.join(PAGE_SERVICES)}")
    service, hub, home = page_services(cfg)[role], cfg["hub"], cfg["nbgrader"]["course_root"]
    name, prefix = service["name"], f"/services/{service['name']}/"
    scopes = json.dumps(["access:services", f"access:services!service={name}"])
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
        "HOME": home, "USER": grader_user(cfg), "SHELL": "/usr/sbin/nologin",
        "JUPYTERHUB_SERVICE_NAME": name, "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_SERVICE_URL": page_service_url(cfg, service),
        "JUPYTERHUB_API_URL": f"http://{hub['connect_host']}:{hub['api_port']}/hub/api",
        "JUPYTERHUB_API_TOKEN": page_service_token(cfg, role), "JUPYTERHUB_CLIENT_ID": f"service-{name}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_OAUTH_SCOPES": scopes, "JUPYTERHUB_OAUTH_ACCESS_SCOPES": scopes,
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
        "JUPYTERHUB_BASE_URL": "/", "JUPYTERHUB_HOST": "", "JUPYTERHUB_USER": grader_user(cfg),
        **service["environment"],
    }
    return {"command": service["command"], "user": grader_user(cfg), "uid": cfg["nbgrader"]["grader_uid"],
            "gid": cfg["spawner"]["gid"], "cwd": home, "environment": environment}


def update_services(c, cfg: dict) -> None:
    services = [{"name": service["name"], "url": page_service_url(cfg, service),
                 "api_token": page_service_token(cfg, role), "display": True, "oauth_no_confirm": True}
                for role, service in page_services(cfg).items()]
    services.append({"name": "tinytorch-deploy", "api_token": _read_secret(cfg["hub"]["api_token_file"])})
    culler = cfg["culler"]
    if culler["enabled"]:
        services.append({
            "name": "idle-culler",
            "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                        f"--timeout={culler['timeout']}", f"--cull-every={culler['every']}",
                        f"--max-age={culler['max_age']}", f"--concurrency={culler['concurrency']}"],
        })
    c.JupyterHub.services = services


def apply(c, cfg: dict, in_container: bool = False) -> None:
    """Set everything on a traitlets Config ``c`` from a validated course config."""
    update_network_and_tls(c, cfg)
    update_secrets(c, cfg)
    update_proxy(c, cfg)
    update_auth(c, cfg)
    update_spawner(c, cfg, in_container)
    update_groups_and_roles(c, cfg)
    update_services(c, cfg)


if "get_config" in globals():  # loaded by JupyterHub
    c = get_config()  # type: ignore[name-defined]  # noqa: F821
    _cfg = load_course_config(os.environ.get(CONFIG_PATH_ENV, DEFAULT_CONFIG_PATH))
    _in_container = os.environ.get("TINYTORCH_HUB_CONTAINER") == "1" and os.geteuid() == 0
    if _in_container:
        prepare_hub_container(_cfg)
    apply(c, _cfg, _in_container)
    # The escape hatch: extra settings an admin drops in, applied last.
    for _extra in sorted(Path("/etc/tinytorch/hub_config.d").glob("*.py")):
        exec(compile(_extra.read_text(), str(_extra), "exec"))  # noqa: S102
