"""hub_config.py applied to a fresh traitlets Config, without starting a hub.

The course config is what the deploy renders; these tests check that each of
its values lands where JupyterHub, DockerSpawner, the culler and nbgrader read
it, that bad files fail with a message naming the key, and that students get
uids of their own.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import types
from pathlib import Path

import pytest
import yaml
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def hub_config():
    spec = importlib.util.spec_from_file_location("hub_config", ROOT / "hub_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def secrets(tmp_path) -> dict:
    paths = {}
    for name in ("cookie_secret", "proxy_token", "api_token", "formgrader_token", "grading_token", "progress_token"):
        path = tmp_path / name
        path.write_text(f"{name}-" + "0123456789abcdef" * 4)
        paths[name] = str(path)
    return paths


@pytest.fixture
def write_config(tmp_path, secrets):
    """Write a course config the way the deploy does, with these secret files and overrides."""
    def write(overrides: dict | None = None, fmt: str = "yaml") -> Path:
        data = {"hub": {"cookie_secret_file": secrets["cookie_secret"],
                        "proxy_token_file": secrets["proxy_token"],
                        "api_token_file": secrets["api_token"],
                        "service_tokens_dir": str(tmp_path),
                        "data_dir": str(tmp_path / "hubdata")}}
        for key, value in (overrides or {}).items():
            if isinstance(value, dict):
                data.setdefault(key, {}).update(value)
            else:
                data[key] = value
        path = tmp_path / f"course.{fmt}"
        path.write_text(yaml.safe_dump(data) if fmt == "yaml" else json.dumps(data))
        return path
    return write


def configured(hub_config, path) -> Config:
    c = Config()
    hub_config.apply(c, hub_config.load_course_config(path))
    return c


def test_defaults_set_spawner_limits_volumes_and_tls(hub_config, write_config):
    c = configured(hub_config, write_config({"spawner": {"image": "tinytorch/student:abc123",
                                                         "mem_limit": "1G", "cpu_limit": 0.5}}))
    assert c.JupyterHub.spawner_class == "tinytorch_start.QueuedDockerSpawner"
    assert c.DockerSpawner.image == "tinytorch/student:abc123"
    assert c.DockerSpawner.allowed_images == ["tinytorch/student:abc123"]
    assert (c.DockerSpawner.mem_limit, c.DockerSpawner.cpu_limit) == ("1G", 0.5)
    assert c.DockerSpawner.volumes["/srv/tinytorch/student-disk/homes/{username}"] == "/home/student"
    assert c.DockerSpawner.volumes["/srv/tinytorch/student-disk/exchange"] == {
        "bind": "/srv/nbgrader/exchange", "mode": "rw"}
    assert c.DockerSpawner.network_name == "tinytorch-students"
    assert c.DockerSpawner.extra_host_config["cap_drop"] == ["ALL"]
    assert "no-new-privileges" in c.DockerSpawner.extra_host_config["security_opt"]
    # nothing a student writes outside their home lands on the host's disk; their server's log is bounded
    assert set(c.DockerSpawner.extra_host_config["tmpfs"]) == {"/tmp", "/var/tmp", "/run/lock"}
    assert c.DockerSpawner.extra_host_config["log_config"]["config"]["max-size"] == "10m"
    assert c.JupyterHub.ssl_cert == "/etc/tinytorch/tls/hub.crt"
    assert c.JupyterHub.bind_url.startswith("https://")
    assert c.JupyterHub.hub_connect_url == "http://tinytorch-hub:8081"
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"secure": True, "samesite": "Lax"}
    assert "TINYTORCH_DATASETS" not in c.DockerSpawner.environment  # no datasets configured, none promised
    assert len(c.DockerSpawner.volumes) == 2


def test_datasets_are_mounted_read_only_where_tinytorch_looks(hub_config, write_config):
    c = configured(hub_config, write_config({"spawner": {"datasets_host_path": "/srv/tinytorch/datasets"}}))
    assert c.DockerSpawner.volumes["/srv/tinytorch/datasets"] == {"bind": "/srv/datasets", "mode": "ro"}
    assert c.DockerSpawner.environment["TINYTORCH_DATASETS"] == "/srv/datasets"
    assert c.DockerSpawner.environment["NBGRADER_EXCHANGE_ROOT"] == "/srv/nbgrader/exchange"


def test_secrets_come_from_the_files_the_deploy_generates(hub_config, write_config, secrets):
    c = configured(hub_config, write_config())
    assert c.ConfigurableHTTPProxy.auth_token == Path(secrets["proxy_token"]).read_text()
    assert c.JupyterHub.cookie_secret_file == secrets["cookie_secret"]
    deploy = next(s for s in c.JupyterHub.services if s["name"] == "tinytorch-deploy")
    assert deploy["api_token"] == Path(secrets["api_token"]).read_text()


def test_missing_or_short_secret_is_a_clear_error(hub_config, write_config, secrets):
    Path(secrets["proxy_token"]).unlink()
    with pytest.raises(hub_config.CourseConfigError, match="proxy_token.*missing.*run the deploy"):
        configured(hub_config, write_config())
    Path(secrets["proxy_token"]).write_text("short")
    with pytest.raises(hub_config.CourseConfigError, match="fewer than 32"):
        configured(hub_config, write_config())


def test_groups_roles_and_services_follow_the_course_id(hub_config, write_config):
    path = write_config({"course_id": "ml101",
                         "roster": {"admins": ["root1"], "tas": ["tina"], "students": ["alice", "bob"]}})
    c = configured(hub_config, path)
    assert c.JupyterHub.load_groups == {"formgrade-ml101": {"users": ["tina"]},
                                        "nbgrader-ml101": {"users": ["alice", "bob"]}}
    assert c.Authenticator.blocked_users == {"grader-ml101"}  # a hub user for nbgrader, never a login
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert "access:services!service=ml101" in roles["formgrade-ml101"]["scopes"]
    assert roles["formgrade-ml101"]["groups"] == ["formgrade-ml101"]
    assert roles["nbgrader-ml101"]["groups"] == ["nbgrader-ml101"]
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["ml101"]["url"] == "http://tinytorch-hub:9999"  # the formgrader, named after the course
    formgrader = hub_config.page_service_process(hub_config.load_course_config(path), "formgrader")
    assert formgrader["user"] == "grader-ml101" and formgrader["uid"] == 1999
    assert formgrader["cwd"] == "/srv/nbgrader/course"
    assert "https://localhost" in formgrader["environment"]["TINYTORCH_FRAME_ANCESTORS"]
    assert formgrader["environment"]["JUPYTERHUB_SERVICE_PREFIX"] == "/services/ml101/"
    assert c.Authenticator.admin_users == {"root1"}
    assert c.Authenticator.allowed_users == {"root1", "tina", "alice", "bob"}


def test_the_grading_page_is_for_tas_and_admins_and_runs_as_the_grader(hub_config, write_config):
    path = write_config({"course_id": "ml101"})
    c = configured(hub_config, path)
    assert {s["name"] for s in c.JupyterHub.services} >= {"grading", "progress"}
    cfg = hub_config.load_course_config(path)
    grading = hub_config.page_service_process(cfg, "grading")
    assert grading["user"] == "grader-ml101" and grading["command"][1:] == ["-m", "tinytorch_grading"]
    assert grading["environment"]["TINYTORCH_GRADING_SOCKET"] == "/run/tinytorch-grading/agent.sock"
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    who_may = [name for name, role in roles.items() if "access:services!service=grading" in role["scopes"]]
    assert who_may == ["formgrade-ml101"]  # and the admins, whose role has every access scope
    progress = hub_config.page_service_process(cfg, "progress")
    assert progress["environment"]["TINYTORCH_PAGE"] == "progress" and progress["user"] == "grader-ml101"
    may_see = sorted(g for r in roles.values() if "access:services!service=progress" in r["scopes"] for g in r["groups"])
    assert may_see == ["formgrade-ml101", "nbgrader-ml101"]  # students see their own row only (the page checks)


def test_the_roster_enrols_only_names_the_hub_has_not_seen(hub_config, write_config, tmp_path):
    """The hub's database is the truth of who is a student or TA: an admin's change on the hub's admin page
    (bob removed from the students) survives the next start, which only enrols names new to the hub."""
    import sqlite3

    (tmp_path / "hubdata").mkdir()
    with sqlite3.connect(tmp_path / "hubdata" / "jupyterhub.sqlite") as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO users (name) VALUES (?)", [("bob",), ("tina",)])
    c = configured(hub_config, write_config({"roster": {"tas": ["tina", "tom"], "students": ["alice", "bob"]}}))
    assert c.JupyterHub.load_groups["nbgrader-tinytorch"] == {"users": ["alice"]}
    assert c.JupyterHub.load_groups["formgrade-tinytorch"] == {"users": ["tom"]}
    assert c.ApprovedNativeAuthenticator.enrol_on_approval is False  # a roster: its roles decide
    c = configured(hub_config, write_config({"roster": {"tas": [], "students": []}}))
    assert c.ApprovedNativeAuthenticator.enrol_on_approval is True  # no roster: approved sign-ups are students
    assert c.ApprovedNativeAuthenticator.student_group == "nbgrader-tinytorch"


def test_culler_is_a_hub_service_with_the_configured_timeout(hub_config, write_config):
    c = configured(hub_config, write_config({"culler": {"timeout": 900, "every": 60}}))
    culler = next(s for s in c.JupyterHub.services if s["name"] == "idle-culler")
    assert "--timeout=900" in culler["command"] and "--cull-every=60" in culler["command"]
    assert culler["command"][1:3] == ["-m", "jupyterhub_idle_culler"]
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "idle-culler")
    assert "delete:servers" in role["scopes"]
    c = configured(hub_config, write_config({"culler": {"enabled": False}}))
    assert "idle-culler" not in {s["name"] for s in c.JupyterHub.services}
    # and no role names it: JupyterHub refuses to start with a role of a service it does not have
    assert "idle-culler" not in {r["name"] for r in c.JupyterHub.load_roles}


def test_native_authenticator_needs_admin_approval_by_default(hub_config, write_config):
    c = configured(hub_config, write_config())
    assert c.JupyterHub.authenticator_class == "tinytorch_auth.ApprovedNativeAuthenticator"
    assert c.NativeAuthenticator.open_signup is False
    assert c.Authenticator.allow_all is True  # no roster yet: anyone may ask, an admin approves
    assert c.Authenticator.username_pattern == hub_config.USERNAME_PATTERN


def test_the_login_page_greets_with_the_course_title_and_says_how_a_newcomer_gets_in(hub_config, write_config):
    def greeting(overrides):
        return configured(hub_config, write_config(overrides)).JupyterHub.template_vars["announcement_login"]

    no_roster = greeting({"course_title": "Deep Learning <Systems> & Co"})
    assert "<strong>Deep Learning &lt;Systems&gt; &amp; Co</strong>" in no_roster  # shown as HTML: escaped
    assert "Sign up first" in no_roster and "approved" in no_roster
    assert "approved" not in greeting({"authenticator": {"open_signup": True}})
    assert "Sign up" not in greeting({"roster": {"students": ["alice"]}})
    pages = hub_config.page_services(hub_config.load_course_config(write_config({"course_title": "ML 101"})))
    assert pages["grading"]["environment"]["TINYTORCH_COURSE_TITLE"] == "ML 101"


def test_oauth_is_pluggable_by_config(hub_config, write_config):
    c = configured(hub_config, write_config({"authenticator": {"class": "oauth", "options": {
        "client_id": "abc", "oauth_callback_url": "https://hub.example/hub/oauth_callback"}}}))
    assert c.JupyterHub.authenticator_class == "oauthenticator.generic.GenericOAuthenticator"
    assert c.GenericOAuthenticator.client_id == "abc"


def test_json_config_is_read_too(hub_config, write_config):
    c = configured(hub_config, write_config({"course_id": "jsoncourse"}, fmt="json"))
    assert "formgrade-jsoncourse" in c.JupyterHub.load_groups


@pytest.mark.parametrize("overrides, message", [
    ({"spawner": {"memory": "1G"}}, r"spawner: Additional properties are not allowed \('memory'"),
    ({"spawner": {"mem_limit": "lots"}}, r"spawner.mem_limit: 'lots' does not match"),
    ({"spawner": {"datasets_host_path": "datasets"}}, r"spawner.datasets_host_path: 'datasets' is not valid"),
    ({"course_id": "ML 101"}, r"course_id: 'ML 101' does not match"),
    ({"roster": {"students": ["Alice Smith"]}}, r"roster.students.0: 'Alice Smith' does not match"),
    ({"roster": {"students": ["ann"], "tas": ["ann"]}}, r"ann listed as both student and TA"),
    ({"roster": {"admins": []}}, r"at least one admin"),
    ({"hub": {"tls_key": None}}, r"tls_cert and hub.tls_key: set both or neither"),
    ({"culler": {"timeout": "1h"}}, r"culler.timeout: '1h' is not of type 'integer'"),
    ({"authenticator": {"class": "pam"}}, r"authenticator.class: 'pam' is not one of"),
])
def test_bad_values_name_the_key(hub_config, write_config, overrides, message):
    with pytest.raises(hub_config.CourseConfigError, match=message):
        hub_config.load_course_config(write_config(overrides))


def test_unreadable_config_files(hub_config, tmp_path):
    with pytest.raises(hub_config.CourseConfigError, match="not found"):
        hub_config.load_course_config(tmp_path / "nope.yml")
    (tmp_path / "bad.yml").write_text("course_id: [unclosed")
    with pytest.raises(hub_config.CourseConfigError, match="not valid YAML"):
        hub_config.load_course_config(tmp_path / "bad.yml")
    (tmp_path / "list.yml").write_text("- a\n- b\n")
    with pytest.raises(hub_config.CourseConfigError, match="must hold a mapping"):
        hub_config.load_course_config(tmp_path / "list.yml")


def test_student_uids_are_distinct_persistent_and_never_reused(hub_config, tmp_path):
    table = tmp_path / "uids.json"
    uids = hub_config.StudentUids(table, first_uid=20000)
    assert uids.uid_for("alice") == 20000
    assert uids.uid_for("bob") == 20001
    assert uids.uid_for("alice") == 20000
    # A user removed from the table by hand does not free the highest uid for reuse.
    again = hub_config.StudentUids(table, first_uid=20000)
    assert again.uid_for("carol") == 20002
    assert oct(table.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError, match="does not match"):
        uids.uid_for("../etc")


def test_passwd_entries_are_added_once_and_stale_ones_replaced(hub_config, tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\nold:x:20001:100::/home/student:/bin/sh\n")
    hub_config.ensure_passwd_entries({"alice": 20000, "bob": 20001}, 100, "/home/student", str(passwd))
    lines = passwd.read_text().splitlines()
    assert lines[0].startswith("root:")
    assert "alice:x:20000:100::/home/student:/usr/sbin/nologin" in lines
    assert "bob:x:20001:100::/home/student:/usr/sbin/nologin" in lines
    assert not any(line.startswith("old:") for line in lines)
    before = passwd.stat().st_mtime_ns
    hub_config.ensure_passwd_entries({"alice": 20000}, 100, "/home/student", str(passwd))
    assert passwd.stat().st_mtime_ns == before


def test_pre_spawn_hook_gives_each_student_their_own_uid(hub_config, write_config):
    c = configured(hub_config, write_config())
    hook = c.Spawner.pre_spawn_hook
    spawned = {}
    for name in ("alice", "bob", "alice"):
        spawner = types.SimpleNamespace(user=types.SimpleNamespace(name=name), environment={})
        hook(spawner)
        spawned[name] = spawner.environment
    assert spawned["alice"]["NB_USER"] == "alice" and spawned["bob"]["NB_USER"] == "bob"
    assert spawned["alice"]["NB_UID"] != spawned["bob"]["NB_UID"]
    assert int(spawned["alice"]["NB_UID"]) >= 20000


def test_jupyterhub_style_load_runs_the_file_end_to_end(write_config, monkeypatch):
    """The way JupyterHub reads it: exec'd by traitlets' PyFileConfigLoader with get_config defined."""
    monkeypatch.setenv("TINYTORCH_COURSE_CONFIG", str(write_config({"course_id": "viaenv"})))
    monkeypatch.delenv("TINYTORCH_HUB_CONTAINER", raising=False)
    c = PyFileConfigLoader("hub_config.py", path=str(ROOT)).load_config()
    assert "nbgrader-viaenv" in c.JupyterHub.load_groups
    assert c.JupyterHub.spawner_class == "tinytorch_start.QueuedDockerSpawner"
    assert os.environ["TINYTORCH_COURSE_CONFIG"].endswith("course.yaml")


def test_with_a_quota_each_home_is_made_by_the_quota_spawner(hub_config, write_config):
    """The hub image's QuotaHomeSpawner (docker/hub/tinytorch_homes.py: tried on a deploy) is DockerSpawner
    with every setting above, making each home with its quota first; without a quota, DockerSpawner itself (both
    with QueuedStart, docker/hub/tinytorch_start.py)."""
    assert configured(hub_config, write_config()).JupyterHub.spawner_class == "tinytorch_start.QueuedDockerSpawner"
    c = configured(hub_config, write_config({"spawner": {"homes": {
        "host_path": "/srv/tt/homes", "hub_path": "/srv/homes", "quota": "2G", "old_volume": "tt-home-{username}"}}}))
    assert c.JupyterHub.spawner_class == "tinytorch_homes.QuotaHomeSpawner"
    assert (c.QuotaHomeSpawner.homes_host_path, c.QuotaHomeSpawner.homes_hub_path, c.QuotaHomeSpawner.home_quota,
            c.QuotaHomeSpawner.old_home_volume) == ("/srv/tt/homes", "/srv/homes", "2G", "tt-home-{username}")
    assert c.DockerSpawner.volumes["/srv/tt/homes/{username}"] == "/home/student"


def test_on_a_swarm_servers_are_services_with_the_same_limits_each_on_its_own_network(hub_config, write_config):
    """spawner.swarm.enabled: the hub image's StudentSwarmSpawner (docker/hub/tinytorch_swarm.py: tried on three
    engines by tests/test_deploy_swarm.py), with the limits DockerSpawner's containers get on one host, each home
    a volume on its node, the hub and the proxy joined to each student's network."""
    one_host = configured(hub_config, write_config())
    swarm = {"enabled": True, "node_label": "tt.students", "home_volume": "tt-home-{username}",
             "hub_container": "tt-hub", "proxy_container": "tt-proxy"}
    c = configured(hub_config, write_config({"hub": {"connect_host": "10.9.0.2", "proxy_api_url": "http://10.9.0.3:8001"},
                                             "spawner": {"swarm": swarm}}))
    assert c.JupyterHub.spawner_class == "tinytorch_swarm.StudentSwarmSpawner"
    s, host = c.StudentSwarmSpawner, one_host.DockerSpawner.extra_host_config
    assert (s.node_label, s.attach, s.pids_limit) == ("tt.students", ["tt-hub", "tt-proxy"], host["pids_limit"])
    # students reach the hub by its name on their own network; the proxy and services by an address only it has
    assert (s.hub_connect_url, c.JupyterHub.hub_connect_url) == ("http://tt-hub:8081", "http://10.9.0.2:8081")
    assert s.extra_container_spec == {"user": "root", "cap_drop": host["cap_drop"], "cap_add": host["cap_add"]}
    assert {path: f"size={size},mode=1777" for path, size in s.tmpfs.items()} == host["tmpfs"]
    assert s.extra_task_spec["log_driver"]["Options"] == host["log_config"]["config"]
    assert s.extra_create_kwargs == {}  # a service takes no container's create arguments
    dockerfile = (ROOT / "docker" / "student" / "Dockerfile").read_text()
    assert f"CMD {json.dumps(s.cmd)}" in dockerfile.splitlines(), "the student image's CMD changed: hub_config too"
    assert (c.DockerSpawner.mem_limit, c.DockerSpawner.cpu_limit) == (one_host.DockerSpawner.mem_limit,
                                                                      one_host.DockerSpawner.cpu_limit)
    assert c.DockerSpawner.volumes["tt-home-{username}"] == "/home/student"
    assert set(c.DockerSpawner.volumes) - {"tt-home-{username}"} == set(one_host.DockerSpawner.volumes) - {
        "/srv/tinytorch/student-disk/homes/{username}"}
    without_proxy = configured(hub_config, write_config({"hub": {"connect_host": "127.0.0.1"},
                                                         "spawner": {"swarm": {"enabled": True}}}))
    assert without_proxy.StudentSwarmSpawner.attach == ["tinytorch-hub"]
    # The page services listen on every address on one host (the bridge's rules stand in front of them), on a swarm
    # only at the hub's address on its own network: the hub is on every student's network there too.
    for overrides, ip in (({}, "0.0.0.0"), ({"hub": {"connect_host": "10.9.0.2"}, "spawner": {"swarm": swarm}}, "10.9.0.2")):
        services = hub_config.page_services(hub_config.load_course_config(write_config(overrides)))
        assert f"--ip={ip}" in services["formgrader"]["command"], services["formgrader"]
        assert services["grading"]["environment"]["TINYTORCH_LISTEN_IP"] == ip
        assert services["progress"]["environment"]["TINYTORCH_LISTEN_IP"] == ip
    with pytest.raises(hub_config.CourseConfigError) as named:
        hub_config.load_course_config(write_config({"hub": {"connect_host": "tt-hub", "proxy_api_url": "http://tt-proxy:8001"},
                                                    "spawner": {"swarm": swarm}}))
    assert "hub.connect_host: with spawner.swarm.enabled" in str(named.value)
    assert "hub.proxy_api_url: with spawner.swarm.enabled" in str(named.value)
    assert "home_quota" not in s and "home_quota" not in without_proxy.StudentSwarmSpawner  # no quota: a volume
    # With a quota (the deploy's default), each home is a subvolume in the homes' folder on its node, bound there and
    # made by a one-off Swarm service (the hub sees no node's homes, so no hub_path); an old volume is copied in.
    quota = configured(hub_config, write_config({"hub": {"connect_host": "127.0.0.1"}, "spawner": {
        "swarm": swarm, "homes": {"host_path": "/srv/tt/homes", "quota": "2G", "old_volume": "tt-home-{username}"}}}))
    assert quota.JupyterHub.spawner_class == "tinytorch_swarm.StudentSwarmSpawner"
    q = quota.StudentSwarmSpawner
    assert (q.home_quota, q.homes_host_path, q.old_home_volume) == ("2G", "/srv/tt/homes", "tt-home-{username}")
    assert quota.DockerSpawner.volumes["/srv/tt/homes/{username}"] == "/home/student"
    assert "tt-home-{username}" not in quota.DockerSpawner.volumes
    with pytest.raises(hub_config.CourseConfigError, match="spawner.swarm.home_volume"):
        hub_config.load_course_config(write_config({"spawner": {"swarm": {"home_volume": "homes"}}}))


def test_the_spawn_limit_queues_starts_instead_of_refusing_them(hub_config, write_config):
    """hub.concurrent_spawn_limit is how many servers start at once (QueuedStart); JupyterHub's own limit, which
    answers 429 "Too many users trying to log in", is off (tests/test_spawn_start.py: the queue itself)."""
    c = configured(hub_config, write_config({"hub": {"concurrent_spawn_limit": 3}}))
    assert (c.QueuedStart.starts_at_once, c.JupyterHub.concurrent_spawn_limit) == (3, 0)


def test_a_quota_without_the_hubs_view_of_the_homes_is_refused(hub_config, write_config):
    with pytest.raises(hub_config.CourseConfigError, match="spawner.homes.quota: needs spawner.homes.hub_path"):
        hub_config.load_course_config(write_config({"spawner": {"homes": {"quota": "2G"}}}))
    with pytest.raises(hub_config.CourseConfigError, match="spawner.homes.quota"):
        hub_config.load_course_config(write_config({"spawner": {"homes": {"hub_path": "/h", "quota": "1.5G"}}}))


POSTGRESQL = {"backend": "postgresql", "socket_dir": "/srv/tinytorch/database/socket",
              "hub_passfile": "/etc/tinytorch/secrets/jupyterhub.pgpass",
              "gradebook_passfile": "/srv/tinytorch/database/gradebook.pgpass"}


def test_the_databases_are_sqlite_files_or_postgresql_through_its_socket(hub_config, write_config, tmp_path):
    """sqlite: the files of today's classrooms; postgresql: each database through the server's Unix socket, its
    role's password read by libpq from a password file, so no URL (the course directory's nbgrader_config.py,
    the hub's log) holds a secret."""
    c = configured(hub_config, write_config())
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'hubdata'}/jupyterhub.sqlite"
    cfg = hub_config.load_course_config(write_config({"database": POSTGRESQL}))
    c = Config()
    hub_config.update_network_and_tls(c, cfg)
    assert c.JupyterHub.db_url == ("postgresql+psycopg2://jupyterhub@/jupyterhub?host=/srv/tinytorch/database/socket"
                                   "&passfile=/etc/tinytorch/secrets/jupyterhub.pgpass")
    assert hub_config.gradebook_url(cfg, "/srv/nbgrader/course") == (
        "postgresql+psycopg2://gradebook@/gradebook?host=/srv/tinytorch/database/socket"
        "&passfile=/srv/tinytorch/database/gradebook.pgpass")
    with pytest.raises(hub_config.CourseConfigError, match="the hub's database cannot be read after 1 s"):
        hub_config.known_users(cfg, wait=1)  # no server answers on that socket: an error, never "nobody"


def test_an_unreadable_hub_database_stops_the_hub_rather_than_enrolling_the_roster_again(hub_config, write_config,
                                                                                         tmp_path):
    """Were an unreadable database taken for "nobody yet", the roster would put back every student an admin
    removed from the course."""
    path = write_config({"roster": {"students": ["alice", "bob"]}})
    (tmp_path / "hubdata").mkdir()
    database = tmp_path / "hubdata" / "jupyterhub.sqlite"
    database.write_bytes(b"")  # the hub's first start: an empty database, no users table yet
    assert configured(hub_config, path).JupyterHub.load_groups["nbgrader-tinytorch"] == {"users": ["alice", "bob"]}
    database.write_bytes(b"not a database, a damaged file " * 100)
    with pytest.raises(hub_config.CourseConfigError, match="cannot be read: file is not a database"):
        configured(hub_config, path)


def test_postgresql_without_its_socket_or_password_files_names_each_key(hub_config, write_config):
    with pytest.raises(hub_config.CourseConfigError) as error:
        hub_config.load_course_config(write_config({"database": {"backend": "postgresql"}}))
    for key in ("socket_dir", "hub_passfile", "gradebook_passfile"):
        assert f"database.{key}: required when database.backend is postgresql" in str(error.value)
    with pytest.raises(hub_config.CourseConfigError, match="database.backend"):
        hub_config.load_course_config(write_config({"database": {"backend": "mysql"}}))


def test_page_services_are_external_each_with_its_own_token_and_the_supervisor_runs_each(hub_config, write_config,
                                                                                          secrets):
    """JupyterHub stops itself when a service it starts does not answer within about 10 s (the formgrader's
    JupyterLab on a loaded host): no service with a URL may be one it starts. The hub container's supervisor
    runs each page service instead, and its config names exactly those."""
    c = configured(hub_config, write_config())
    with_url = [s for s in c.JupyterHub.services if "url" in s]
    assert sorted(s["name"] for s in with_url) == ["grading", "progress", "tinytorch"]
    assert not [s["name"] for s in with_url if "command" in s], "a service with a URL is started by JupyterHub"
    assert len({s["api_token"] for s in with_url}) == 3
    supervised = re.findall(r"^\[program:(\w+)\]\ncommand=python -m tinytorch_service (\w+)$",
                            (ROOT / "docker" / "hub" / "supervisord.conf").read_text(), re.M)
    assert supervised == [(role, role) for role in hub_config.PAGE_SERVICES]
    Path(secrets["grading_token"]).unlink()
    with pytest.raises(hub_config.CourseConfigError, match="grading_token is missing"):
        configured(hub_config, write_config())
    with pytest.raises(hub_config.CourseConfigError, match="no page service 'shell'"):
        hub_config.page_service_process(hub_config.load_course_config(write_config()), "shell")
