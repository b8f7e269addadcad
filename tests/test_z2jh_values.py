"""deploy/z2jh_values.py: the course config as Zero to JupyterHub chart values, without a cluster.

Every key of the course config is mapped to chart values or named not applicable; the values carry the
config's settings through; every path written is one of the chart's (CHART_KEYS, read off the chart's
values.schema.yaml); no secret lands in the file; the admin guide's table is the mapping's."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
import z2jh_values  # noqa: E402
from z2jh_values import hub_config  # noqa: E402

TABLE_START = "<!-- z2jh-table: python deploy/z2jh_values.py --table -->\n"
TABLE_END = "<!-- /z2jh-table -->"

CUSTOM = {
    "course_id": "ml101",
    "hub": {"public_url": "https://hub.example.edu", "concurrent_spawn_limit": 12, "active_server_limit": 300},
    "authenticator": {"class": "oauth", "options": {"client_id": "classroom", "oauth_callback_url":
                                                    "https://hub.example.edu/hub/oauth_callback"}},
    "spawner": {"image": "registry.example.edu/tinytorch/student:2026.11", "mem_limit": "3G", "cpu_limit": 1.5,
                "homes": {"host_path": "/srv/homes", "hub_path": "/srv/homes", "quota": "4G"},
                "start_timeout": 240, "http_timeout": 90, "first_uid": 30000, "gid": 1234,
                "home_dir": "/home/learner", "container_prefix": "ml101-student",
                "exchange_host_path": "/export/exchange", "datasets_host_path": "/export/datasets",
                "datasets_dir": "/data"},
    "culler": {"timeout": 1800, "every": 120, "max_age": 28800, "concurrency": 4},
    "nbgrader": {"exchange_root": "/srv/exchange", "formgrader_port": 9100, "grading_port": 9101,
                 "progress_port": 9102},
    "roster": {"admins": ["prof"], "tas": ["tara"], "students": ["alice", "bob"]},
    "database": {"backend": "postgresql", "socket_dir": "/run/postgresql",
                 "hub_passfile": "/etc/tinytorch/secrets/jupyterhub.pgpass",
                 "gradebook_passfile": "/etc/tinytorch/secrets/gradebook.pgpass"},
}


def custom_config() -> dict:
    return hub_config.validate(hub_config.deep_merge(hub_config.DEFAULTS, CUSTOM))


def leaf_paths(values: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            paths += leaf_paths(value, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths


def chart_key(path: str) -> str | None:
    """The CHART_KEYS entry that allows ``path``, or None."""
    for key in z2jh_values.CHART_KEYS:
        if path == key or (key.endswith(".*") and (path == key[:-2] or path.startswith(key[:-1]))):
            return key
    return None


def test_every_course_config_key_is_mapped_or_named_not_applicable():
    keys = z2jh_values.leaf_keys()
    assert "spawner.homes.quota" in keys and "authenticator.options" in keys and "deadlines" in keys
    missing = sorted(set(keys) - set(z2jh_values.MAPPING))
    assert not missing, f"course-config keys with no row in z2jh_values.MAPPING: {missing}"
    stale = sorted(set(z2jh_values.MAPPING) - set(keys))
    assert not stale, f"z2jh_values.MAPPING rows for keys the course config does not have: {stale}"
    for key, (paths, note) in z2jh_values.MAPPING.items():
        assert note.strip(), f"{key}: say how it is mapped, or why it is not applicable"
    # DEFAULTS has the same keys as SCHEMA (an open object such as authenticator.options is one key)
    defaults = {path for path in leaf_paths(hub_config.DEFAULTS)}
    assert defaults <= set(keys) | {"authenticator.options", "deadlines"}, sorted(defaults - set(keys))


def test_every_mapped_path_is_a_chart_value_the_generator_writes():
    """Each path of MAPPING is set in the values of the default config (native sign-up, SQLite) or of the
    customised one (OAuth, PostgreSQL, NFS, datasets, a quota)."""
    made = [(cfg, z2jh_values.values(cfg, nfs_server="nfs.example.edu", postgres_host="db.example.edu"))
            for cfg in (hub_config.load_course_config(None), custom_config())]
    for key, (paths, _) in z2jh_values.MAPPING.items():
        for path in paths:
            assert chart_key(path.replace("<course>", "x")), f"{key}: {path} is not one of z2jh_values.CHART_KEYS"
            assert any(is_set(values, path.replace("<course>", cfg["course_id"])) for cfg, values in made), \
                f"{key} is mapped to {path}, which the generated values do not set"


def is_set(values: dict, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return True


@pytest.mark.parametrize("kind", ["default", "custom"])
def test_generated_values_use_only_chart_keys(kind):
    cfg = hub_config.load_course_config(None) if kind == "default" else custom_config()
    values = z2jh_values.values(cfg, postgres_host="db.example.edu")
    unknown = sorted(path for path in leaf_paths(values) if not chart_key(path))
    assert not unknown, f"values the chart does not have (z2jh_values.CHART_KEYS): {unknown}"


def test_the_default_config_carries_through():
    cfg = hub_config.load_course_config(None)
    values = z2jh_values.values(cfg)
    single = values["singleuser"]
    assert single["image"] == {"name": "tinytorch/student", "tag": "latest", "pullPolicy": "IfNotPresent"}
    assert single["memory"] == {"limit": "2Gi", "guarantee": "2Gi"}
    assert single["cpu"] == {"limit": 1.0, "guarantee": 1.0}
    assert single["fsGid"] == 100 and single["startTimeout"] == 180
    assert single["storage"]["homeMountPath"] == "/home/student" and "capacity" not in single["storage"]
    assert {"name": "exchange", "persistentVolumeClaim": {"claimName": "tinytorch-exchange"}} \
        in single["storage"]["extraVolumes"]
    assert values["cull"] == {"enabled": True, "users": False, "timeout": 3600, "every": 600, "maxAge": 0,
                              "concurrency": 10}
    assert values["hub"]["db"] == {"type": "sqlite-pvc"}
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"] == \
        "tinytorch_auth.ApprovedNativeAuthenticator"
    assert values["hub"]["config"]["Authenticator"]["allow_all"] is True
    assert set(values["hub"]["services"]) == {"tinytorch", "grading", "progress", "tinytorch-deploy"}
    assert "20000 + spawner.user.id" in values["hub"]["extraConfig"]["tinytorch-identity"]
    assert values["proxy"]["https"]["secret"] == {"name": "tinytorch-tls"}


def test_a_customised_config_carries_through():
    values = z2jh_values.values(custom_config(), nfs_server="nfs.example.edu", postgres_host="db.example.edu")
    single, hub = values["singleuser"], values["hub"]
    assert single["image"]["name"] == "registry.example.edu/tinytorch/student" and single["image"]["tag"] == "2026.11"
    assert single["memory"]["limit"] == "3Gi" and single["cpu"] == {"limit": 1.5, "guarantee": 1.5}
    assert single["storage"]["capacity"] == "4Gi" and single["storage"]["homeMountPath"] == "/home/learner"
    assert single["podNameTemplate"] == "ml101-student-{username}"
    assert {"name": "exchange", "nfs": {"server": "nfs.example.edu", "path": "/export/exchange"}} \
        in single["storage"]["extraVolumes"]
    assert {"name": "datasets", "mountPath": "/data", "readOnly": True} in single["storage"]["extraVolumeMounts"]
    assert single["extraEnv"] == {"NBGRADER_EXCHANGE_ROOT": "/srv/exchange", "NB_GID": "1234",
                                  "HOME": "/home/learner", "TINYTORCH_DATASETS": "/data"}
    assert values["cull"]["timeout"] == 1800 and values["cull"]["maxAge"] == 28800
    assert hub["concurrentSpawnLimit"] == 12 and hub["activeServerLimit"] == 300
    assert hub["services"]["ml101"]["url"] == "http://hub:9100"
    assert [p["port"] for p in hub["service"]["extraPorts"]] == [9100, 9101, 9102]
    assert hub["config"]["GenericOAuthenticator"]["client_id"] == "classroom"
    assert hub["config"]["JupyterHub"]["load_groups"] == {"formgrade-ml101": {"users": ["tara"]},
                                                         "nbgrader-ml101": {"users": ["alice", "bob"]}}
    assert hub["config"]["Authenticator"]["allowed_users"] == ["alice", "bob", "prof", "tara"]
    assert "ml101-formgrader-service" in hub["loadRoles"] and "idle-culler" not in hub["loadRoles"]
    assert hub["loadRoles"]["formgrade-ml101"]["groups"] == ["formgrade-ml101"]
    assert "30000 + spawner.user.id" in hub["extraConfig"]["tinytorch-identity"]
    assert hub["db"] == {"type": "postgres", "url": "postgresql+psycopg2://jupyterhub@db.example.edu:5432/jupyterhub"}
    assert values["proxy"]["https"]["hosts"] == ["hub.example.edu"]


def test_the_cli_writes_valid_yaml_and_bad_input_gets_hub_configs_error(tmp_path, capsys):
    course = tmp_path / "course.yml"
    course.write_text(yaml.safe_dump(CUSTOM))
    done = subprocess.run([sys.executable, str(ROOT / "deploy" / "z2jh_values.py"), str(course),
                           "--postgres-host", "db"], capture_output=True, text=True, check=True)
    assert yaml.safe_load(done.stdout)["singleuser"]["memory"]["limit"] == "3Gi"
    assert z2jh_values.main([str(course)]) == 2
    assert "--postgres-host" in capsys.readouterr().err
    course.write_text(yaml.safe_dump({"spawner": {"mem_limit": "lots"}}))
    assert z2jh_values.main([str(course)]) == 2
    out = capsys.readouterr()
    assert "spawner.mem_limit" in out.err and not out.out


def test_no_secret_from_the_host_lands_in_the_values(tmp_path):
    secrets = {}
    for name in ("cookie_secret", "proxy_token", "api_token", "jupyterhub.pgpass", "tls.key"):
        secrets[name] = tmp_path / name
        secrets[name].write_text(f"SECRET-{name}-" + "f00d" * 16)
    for role in hub_config.PAGE_SERVICES:
        secrets[role] = tmp_path / f"{role}_token"
        secrets[role].write_text(f"SECRET-{role}-" + "f00d" * 16)
    cfg = hub_config.deep_merge(CUSTOM, {"hub": {
        "cookie_secret_file": str(secrets["cookie_secret"]), "proxy_token_file": str(secrets["proxy_token"]),
        "api_token_file": str(secrets["api_token"]), "service_tokens_dir": str(tmp_path),
        "tls_key": str(secrets["tls.key"])}, "database": {"hub_passfile": str(secrets["jupyterhub.pgpass"])}})
    values = z2jh_values.values(hub_config.validate(hub_config.deep_merge(hub_config.DEFAULTS, cfg)),
                                postgres_host="db.example.edu")
    text = yaml.safe_dump(values)
    assert "SECRET-" not in text and "f00d" not in text
    inlined = [path for path in leaf_paths(values)
               if path.rsplit(".", 1)[-1] in {"cookieSecret", "secretToken", "password", "api_token", "apiToken"}]
    assert not inlined, f"secrets must be the chart's or a Kubernetes Secret, never values: {inlined}"
    assert values["hub"]["extraEnv"]["PGPASSWORD"] == {"valueFrom": {"secretKeyRef": {
        "name": "ml101-database", "key": "jupyterhub"}}}


def test_the_admin_guides_table_is_the_mapping():
    guide = (ROOT / "docs" / "admins.md").read_text()
    assert TABLE_START in guide and TABLE_END in guide, "docs/admins.md: the On Kubernetes section's table markers"
    shown = guide.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    assert shown == z2jh_values.markdown_table(), \
        "docs/admins.md's table differs from z2jh_values.MAPPING: paste `python deploy/z2jh_values.py --table`"
