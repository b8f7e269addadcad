"""The classroom's Docker Swarm, formed by the deploy from the inventory, on a cluster this test makes and removes.

The cluster is three Docker engines, each a separate dockerd in a network namespace of its own (own data root,
exec root, socket and host name), joined by a bridge in a fourth namespace on a private subnet. The host's own
dockerd is never put in swarm mode. The swarm role runs against the three engines through an inventory, as
site.yml runs it: engine 1 is the [hub] host (the manager), engines 2 and 3 are [nodes].
"""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.test_deploy import RECAP, VARS, changed_tasks, explain

pytestmark = [pytest.mark.deploy, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SLOT = int(os.environ.get("TINYTORCH_TEST_SLOT", "0"))
PREFIX = f"tt{SLOT}sw"                          # namespaces tt<slot>sw-lan, tt<slot>sw-<i>
STATE = Path(f"/var/tmp/tinytorch-swarm{SLOT}")  # each engine's data, exec root, socket and log
SUBNET = ipaddress.ip_network(f"10.231.{SLOT}.0/24")
ENGINES = (1, 2, 3)
DAEMONS: dict[int, subprocess.Popen] = {}        # the dockerds this run started (their parent reaps them)


def address(i: int) -> str:
    return str(SUBNET[10 + i])


def socket_of(i: int) -> str:
    return f"unix://{STATE}/e{i}/docker.sock"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=120)


def engine(i: int, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("docker", "-H", socket_of(i), *args, check=check)


def start_engine(i: int) -> None:
    """Namespace <PREFIX>-i, its end of a veth pair on the lan's bridge, and a dockerd of its own inside it."""
    ns, here = f"{PREFIX}-{i}", STATE / f"e{i}"
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", f"{ns}-a", "type", "veth", "peer", "name", f"{ns}-b")
    sh("ip", "link", "set", f"{ns}-a", "netns", ns)
    sh("ip", "link", "set", f"{ns}-b", "netns", f"{PREFIX}-lan")
    sh("ip", "-n", f"{PREFIX}-lan", "link", "set", f"{ns}-b", "master", "br0", "up")
    sh("ip", "-n", ns, "link", "set", f"{ns}-a", "name", "eth0")
    sh("ip", "-n", ns, "addr", "add", f"{address(i)}/{SUBNET.prefixlen}", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    here.mkdir(parents=True)
    # nsenter, not `ip netns exec`: the latter remounts /sys, hiding the cgroup hierarchy dockerd needs.
    # unshare --uts: the engine's own host name, the node's name in the swarm.
    DAEMONS[i] = subprocess.Popen(
        ["nsenter", f"--net=/var/run/netns/{ns}", "unshare", "--uts", "sh", "-c",
         f"hostname {ns} && exec dockerd --data-root {here}/data --exec-root {here}/exec -H {socket_of(i)} "
         f"--pidfile {here}/dockerd.pid --bip 10.232.{i}.1/24 --cgroup-parent /{ns}"],
        stdout=open(here / "dockerd.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while engine(i, "info", check=False).returncode != 0:
        assert time.time() < deadline, (here / "dockerd.log").read_text()[-3000:]
        time.sleep(0.5)


def exited(pid: int, child: subprocess.Popen | None, within: float) -> bool:
    """Wait for the process to end; a dockerd this run started is our child, and is reaped (no zombie left)."""
    if child is not None:
        try:
            child.wait(timeout=within)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.time() + within
    while Path(f"/proc/{pid}").exists() and time.time() < deadline:
        time.sleep(0.2)
    return not Path(f"/proc/{pid}").exists()


def stop_everything() -> None:
    """Whatever this test (or an interrupted run of it) left: engines out of swarm mode, stopped, removed."""
    for i in ENGINES:
        here = STATE / f"e{i}"
        pidfile = here / "dockerd.pid"
        if pidfile.exists():
            engine(i, "swarm", "leave", "--force", check=False)
            pid = int(pidfile.read_text().strip() or 0)
            cmdline = Path(f"/proc/{pid}/cmdline")
            if pid and cmdline.exists() and f"{here}/data".encode() in cmdline.read_bytes():  # ours, not a reused pid
                os.kill(pid, signal.SIGTERM)
                if not exited(pid, DAEMONS.get(i), within=30):
                    os.kill(pid, signal.SIGKILL)
                    exited(pid, DAEMONS.get(i), within=10)
        DAEMONS.pop(i, None)
        for mount in reversed(Path("/proc/mounts").read_text().split("\n")):
            if f" {here}/" in mount:
                sh("umount", "-l", mount.split()[1], check=False)
        sh("ip", "netns", "del", f"{PREFIX}-{i}", check=False)
    sh("ip", "netns", "del", f"{PREFIX}-lan", check=False)
    subprocess.run(["rm", "-rf", str(STATE)], timeout=900)  # the engines' images: a GB or more
    IN_USE.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def engines():
    routes = json.loads(sh("ip", "-j", "-4", "route").stdout)
    taken = [r["dst"] for r in routes if r["dst"] != "default" and ipaddress.ip_network(r["dst"], strict=False).overlaps(SUBNET)]
    assert not taken, f"the test cluster's subnet {SUBNET} overlaps this host's routes {taken}: pick another"
    stop_everything()
    try:
        sh("ip", "netns", "add", f"{PREFIX}-lan")
        sh("ip", "-n", f"{PREFIX}-lan", "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", f"{PREFIX}-lan", "link", "set", "br0", "up")
        for i in ENGINES:
            start_engine(i)
        yield ENGINES
    finally:
        stop_everything()
        assert "Swarm: inactive" in sh("docker", "info").stdout, "the host's own dockerd must never be in swarm mode"


def inventory(path: Path, nodes: list[int]) -> Path:
    def host(i: int) -> str:
        return (f"e{i} ansible_connection=local swarm_docker_host={socket_of(i)} swarm_advertise_addr={address(i)}")
    path.write_text("[hub]\n" + host(1) + "\n\n[nodes]\n" + "".join(host(i) + "\n" for i in nodes)
                    + "\n[graders]\n" + host(1) + "\n\n[classroom:children]\nhub\nnodes\ngraders\n\n"
                    "[classroom:vars]\nansible_python_interpreter=/usr/bin/python3\n")
    return path


def swarm_playbook(tmp_path: Path, hosts: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """site.yml's swarm step alone (the rest of site.yml needs a whole classroom on each engine), with the deploy's
    group_vars and roles."""
    play = tmp_path / "play"
    if not play.exists():
        play.mkdir()
        (play / "group_vars").symlink_to(DEPLOY / "group_vars")
        (play / "roles").symlink_to(DEPLOY / "roles")
        (play / "swarm.yml").write_text(
            "- name: The classroom's swarm\n  hosts: classroom\n  become: true\n  gather_facts: false\n"
            "  tasks:\n    - name: Form the swarm.\n      ansible.builtin.import_role:\n        name: swarm\n"
            "      when: tinytorch_swarm and inventory_hostname in tinytorch_swarm_members\n")
    result = subprocess.run([str(DEPLOY / ".venv" / "bin" / "ansible-playbook"), "-i", str(hosts),
                             str(play / "swarm.yml"), *args], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "ANSIBLE_CONFIG": str(DEPLOY / "ansible.cfg")})
    recap = {m[0]: {"changed": int(m[2]), "failed": int(m[4])} for m in RECAP.findall(result.stdout)}
    return result, recap


def nodes_of_swarm() -> dict[str, dict]:
    """Host name -> state, availability and labels of each node, as the manager (engine 1) lists them."""
    ids = engine(1, "node", "ls", "-q").stdout.split()
    listed = json.loads(engine(1, "node", "inspect", *ids).stdout)
    return {n["Description"]["Hostname"]: {"state": n["Status"]["State"], "availability": n["Spec"]["Availability"],
                                           "labels": n["Spec"].get("Labels") or {}} for n in listed}


def test_the_inventory_forms_labels_and_shrinks_the_swarm(engines, tmp_path):
    three = inventory(tmp_path / "three.ini", nodes=[2, 3])
    check, _ = swarm_playbook(tmp_path, three, "--check")  # says what it would do, forms nothing
    assert check.returncode == 0, explain(check)
    assert "e2 would join the swarm that the real run forms on e1" in check.stdout, explain(check)
    assert all("Swarm: inactive" in engine(i, "info").stdout for i in ENGINES)

    first, recap = swarm_playbook(tmp_path, three)
    assert first.returncode == 0, explain(first)
    token = engine(1, "swarm", "join-token", "-q", "worker").stdout.strip()
    assert token not in first.stdout + first.stderr, "the join token was printed"
    nodes = nodes_of_swarm()
    assert set(nodes) == {f"{PREFIX}-1", f"{PREFIX}-2", f"{PREFIX}-3"}, nodes
    assert all(n["state"] == "ready" and n["availability"] == "active" for n in nodes.values()), nodes
    assert nodes[f"{PREFIX}-1"]["labels"] == {"tinytorch.hub": "true", "tinytorch.graders": "true"}, nodes
    assert nodes[f"{PREFIX}-2"]["labels"] == {"tinytorch.students": "true"}, nodes
    assert json.loads(engine(1, "info", "--format", "{{json .Swarm.ControlAvailable}}").stdout) is True
    assert json.loads(engine(2, "info", "--format", "{{json .Swarm.ControlAvailable}}").stdout) is False

    again, recap = swarm_playbook(tmp_path, three)
    assert again.returncode == 0, explain(again)
    assert all(r["changed"] == 0 for r in recap.values()), f"changed: {changed_tasks(again.stdout)}"

    # Engine 3 dropped from the inventory: drained, then removed; engine 2 keeps running.
    two = inventory(tmp_path / "two.ini", nodes=[2])
    shrink, recap = swarm_playbook(tmp_path, two)
    assert shrink.returncode == 0, explain(shrink)
    assert {"swarm : Drain each node no longer in the inventory (its tasks move to other nodes).",
            "swarm : Remove each node no longer in the inventory from the swarm."} <= set(changed_tasks(shrink.stdout))
    assert set(nodes_of_swarm()) == {f"{PREFIX}-1", f"{PREFIX}-2"}
    settled, recap = swarm_playbook(tmp_path, two)
    assert settled.returncode == 0 and all(r["changed"] == 0 for r in recap.values()), changed_tasks(settled.stdout)

    # Back in the inventory, engine 3 leaves the swarm it still believes it is in and joins again.
    back, recap = swarm_playbook(tmp_path, three)
    assert back.returncode == 0, explain(back)
    nodes = nodes_of_swarm()
    assert set(nodes) == {f"{PREFIX}-1", f"{PREFIX}-2", f"{PREFIX}-3"}, nodes
    assert nodes[f"{PREFIX}-3"]["labels"] == {"tinytorch.students": "true"}, nodes


def test_bad_swarm_variables_stop_the_deploy_before_anything_changes(tmp_path):
    root = tmp_path / "never-created"
    (tmp_path / "vars.json").write_text(json.dumps({**VARS, "tinytorch_root": str(root)}))
    hosts = tmp_path / "inventory.ini"
    hosts.write_text(
        "[hub]\nlocalhost ansible_connection=local swarm_advertise_addr=the-hub\n\n"
        "[nodes]\nnode1 ansible_connection=local swarm_docker_host=/var/run/docker.sock swarm_advertise_addr=10.0.0.2\n"
        "node2 ansible_connection=local\n\n"
        "[graders]\nlocalhost ansible_connection=local\n\n"
        "[classroom]\nnode1\n\n[classroom:children]\nhub\ngraders\n\n"
        "[classroom:vars]\nansible_python_interpreter=/usr/bin/python3\n")
    result = subprocess.run(["bash", str(DEPLOY / "deploy.sh"), "-e", f"@{tmp_path / 'vars.json'}"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "INVENTORY": str(hosts)})
    assert result.returncode != 0
    for expected in ["localhost: swarm_advertise_addr: 'the-hub' must be the IPv4 address",
                     "node1: swarm_docker_host: '/var/run/docker.sock' must be a Docker engine's address",
                     "inventory: node2 is in [nodes] but not in [classroom]"]:
        assert expected in result.stdout, f"{expected!r} missing\n{explain(result)}"
    recap = {m[0]: int(m[2]) for m in RECAP.findall(result.stdout)}
    assert recap and all(changed == 0 for changed in recap.values()), recap
    assert not root.exists()
    assert "Swarm: inactive" in subprocess.run(["docker", "info"], capture_output=True, text=True).stdout


# --------------------------------------------------------------------------- students' servers across the nodes
# The classroom's hub image on engine 1 (the manager) with the course config the deploy writes for a swarm
# (spawner.swarm.enabled: docker/hub/tinytorch_swarm.py), the student image on engines 2 and 3 (docker save |
# docker load, as without a registry), and students' servers started through the hub's API. The exchange is one
# folder of this machine, which every engine sees at the same path (the stand-in for NFS on a real cluster).
HUB = f"{PREFIX}-hub"
NETWORK = f"{PREFIX}-students"
PREFIX_STUDENT = f"{PREFIX}-student"
STUDENT_UID = 20000


IN_USE = Path("/var/lib/tinytorch/images") / f"{PREFIX}.json"  # as a classroom records its images (images role)


def built_images() -> dict[str, str]:
    """The hub and student images as the deploy builds them (content-tagged; built here only when missing),
    recorded as in use while the test runs, so that a deploy meanwhile does not prune them."""
    result = subprocess.run(["bash", str(ROOT / "docker" / "build.sh"), "build", "hub", "student"],
                            capture_output=True, text=True, timeout=1800,
                            env={**os.environ, "PYTHON": str(ROOT / ".venv" / "bin" / "python")})
    assert result.returncode == 0, result.stderr[-3000:]
    images = dict(line.split("=", 1) for line in result.stdout.split() if "=tinytorch/" in line)
    IN_USE.parent.mkdir(parents=True, exist_ok=True)
    IN_USE.write_text(json.dumps(images))
    return images


def load_image(image: str, i: int) -> None:
    """docker save | docker load: the image reaches the engine without a registry."""
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    load = subprocess.run(["docker", "-H", socket_of(i), "load"], stdin=save.stdout, capture_output=True,
                          text=True, timeout=900)
    save.stdout.close()
    assert save.wait(timeout=60) == 0 and load.returncode == 0, load.stderr


def hub_files(here: Path, images: dict[str, str]) -> None:
    import secrets

    import yaml

    (here / "secrets").mkdir(parents=True)
    for name in ("cookie_secret", "proxy_token", "api_token", "formgrader_token", "grading_token", "progress_token"):
        (here / "secrets" / name).write_text(secrets.token_hex(32))
        (here / "secrets" / name).chmod(0o600)
    (here / "exchange").mkdir(mode=0o755)
    (here / "exchange").chmod(0o1777)
    (here / "course.yml").write_text(yaml.safe_dump({
        # The hub starts its own proxy, in its container: both reach it at 127.0.0.1; students by its name.
        "hub": {"public_url": "http://localhost:8000", "bind_url": "http://0.0.0.0:8000", "proxy_api_url": None,
                "connect_host": "127.0.0.1", "tls_cert": None, "tls_key": None, "data_dir": "/srv/jupyterhub"},
        "spawner": {"image": images["student"], "network": NETWORK, "container_prefix": PREFIX_STUDENT,
                    "mem_limit": "1G", "cpu_limit": 1.0, "pids_limit": 256, "first_uid": STUDENT_UID,
                    "exchange_host_path": str(here / "exchange"), "start_timeout": 120, "http_timeout": 60,
                    "swarm": {"enabled": True, "home_volume": f"{PREFIX}-home-{{username}}", "hub_container": HUB}},
        "roster": {"admins": ["admin"], "students": ["alice", "bob"]},
    }))


def start_hub(images: dict[str, str]) -> Path:
    here = STATE / "hub"
    hub_files(here, images)
    engine(1, "network", "create", "--driver", "bridge", f"{PREFIX}-hubnet")
    engine(1, "run", "-d", "--name", HUB, "--network", f"{PREFIX}-hubnet",
           "-v", f"{socket_of(1).removeprefix('unix://')}:/var/run/docker.sock",
           "-v", f"{here}/course.yml:/etc/tinytorch/course.yml:ro",
           "-v", f"{ROOT}/hub_config.py:/etc/jupyterhub/jupyterhub_config.py:ro",
           "-v", f"{here}/secrets:/etc/tinytorch/secrets:ro",
           "-v", f"{here}/exchange:/srv/nbgrader/exchange",
           "-e", "TINYTORCH_HUB_CONTAINER=1", "-e", "TINYTORCH_COURSE_CONFIG=/etc/tinytorch/course.yml",
           images["hub"], "jupyterhub", "--config", "/etc/jupyterhub/jupyterhub_config.py")
    return here


def hub_api(token: str, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    """The hub's REST API (and what it proxies), asked from inside the hub container on engine 1."""
    script = ("import json, sys, urllib.request, urllib.error\n"
              "m, p, t, b = sys.argv[1:5]\n"
              "r = urllib.request.Request('http://127.0.0.1:8000' + p, method=m, data=b.encode() if b else None,"
              " headers={'Authorization': 'token ' + t})\n"
              "try:\n    s = urllib.request.urlopen(r, timeout=20)\nexcept urllib.error.HTTPError as e:\n    s = e\n"
              "except OSError as e:\n    print(json.dumps([0, str(e)])); sys.exit()\n"
              "text = s.read().decode()\n"
              "try:\n    out = json.loads(text)\nexcept ValueError:\n    out = text[:300]\n"
              "print(json.dumps([s.status, out]))\n")
    done = engine(1, "exec", HUB, "python", "-c", script, method, path, token, json.dumps(body) if body else "",
                  check=False)
    assert done.returncode == 0, f"{done.stderr}\n{hub_log()}"
    status, out = json.loads(done.stdout)
    return status, out


def start_server(token: str, name: str) -> float:
    """Ask the hub for a student's server; seconds until the hub calls it ready."""
    began = time.monotonic()
    status, out = hub_api(token, "POST", f"/hub/api/users/{name}/server")
    assert status in (201, 202), f"{status} {out}\n{hub_log()}"
    while True:
        status, user = hub_api(token, "GET", f"/hub/api/users/{name}")
        server = user.get("servers", {}).get("") if isinstance(user, dict) else None
        if server and server.get("ready"):
            return time.monotonic() - began
        assert server or time.monotonic() - began < 10, f"{name}'s start failed:\n{hub_log()}"
        assert time.monotonic() - began < 180, f"{name}'s server is not ready after 180 s:\n{hub_log()}"
        time.sleep(0.2)


def stop_server(token: str, name: str) -> None:
    status, out = hub_api(token, "DELETE", f"/hub/api/users/{name}/server")
    assert status in (202, 204), f"{status} {out}\n{hub_log()}"
    deadline = time.time() + 60
    while hub_api(token, "GET", f"/hub/api/users/{name}")[1].get("servers"):
        assert time.time() < deadline, hub_log()
        time.sleep(0.5)


def hub_log() -> str:
    return engine(1, "logs", "--tail", "60", HUB, check=False).stderr[-6000:]


def node_of(name: str) -> str:
    """The host name of the node running the student's server."""
    return engine(1, "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}",
                  f"{PREFIX_STUDENT}-{name}").stdout.split()[0]


def in_server(name: str, code: str) -> str:
    """Run Python as the student (their uid), inside their server's container on its node."""
    i = int(node_of(name).rsplit("-", 1)[1])
    container = engine(i, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={PREFIX_STUDENT}-{name}"
                       ).stdout.split()[0]
    return engine(i, "exec", "-u", str(STUDENT_UID + ["alice", "bob"].index(name)), container,
                  "python", "-c", code).stdout.strip()


REACH = ("import socket, sys\n"
         "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close(); print('reached')\n"
         "except OSError as e:\n    print('refused:', e)\n")


def reach(name: str, host: str, port: int) -> str:
    return in_server(name, f"import sys; sys.argv = ['', {host!r}, {port}]\n" + REACH)


def test_students_servers_start_on_the_nodes_pinned_to_their_homes_and_cannot_reach_each_other(engines, tmp_path):
    formed, _ = swarm_playbook(tmp_path, inventory(tmp_path / "three.ini", nodes=[2, 3]))
    assert formed.returncode == 0, explain(formed)
    images = built_images()
    with ThreadPoolExecutor() as pool:  # the three loads at once; .result() raises a failed one's error
        for load in [pool.submit(load_image, images["hub"], 1)] + [pool.submit(load_image, images["student"], i)
                                                                   for i in (2, 3)]:
            load.result()
    here = start_hub(images)
    token = (here / "secrets" / "api_token").read_text()
    deadline = time.time() + 120
    while hub_api(token, "GET", "/hub/api/")[0] != 200:
        assert time.time() < deadline, hub_log()
        time.sleep(1)
    for name in ("alice", "bob"):
        status, out = hub_api(token, "POST", f"/hub/api/users/{name}")
        assert status in (201, 409), (status, out)

    seconds = {name: start_server(token, name) for name in ("alice", "bob")}
    nodes = {name: node_of(name) for name in ("alice", "bob")}
    assert set(nodes.values()) == {f"{PREFIX}-2", f"{PREFIX}-3"}, nodes  # one on each of the [nodes]

    # The same limits as on one host, as the service's spec.
    spec = json.loads(engine(1, "service", "inspect", f"{PREFIX_STUDENT}-alice").stdout)[0]["Spec"]["TaskTemplate"]
    assert spec["Resources"]["Limits"] == {"MemoryBytes": 2**30, "NanoCPUs": 1_000_000_000, "Pids": 256}, spec
    assert spec["ContainerSpec"]["CapabilityDrop"] == ["ALL"], spec
    assert {m["Target"]: m["Type"] for m in spec["ContainerSpec"]["Mounts"]} == {
        "/home/student": "volume", "/srv/nbgrader/exchange": "bind", "/tmp": "tmpfs", "/var/tmp": "tmpfs",
        "/run/lock": "tmpfs"}, spec

    # Each answers through the hub; each reaches the hub's API; neither reaches the other, by name or address.
    for name in ("alice", "bob"):
        status, out = hub_api(token, "GET", f"/user/{name}/api/status")
        assert status == 200 and "started" in out, (status, out)
        assert reach(name, HUB, 8081) == "reached"
    bob_task = json.loads(engine(1, "inspect", *engine(1, "service", "ps", "-q", "--filter", "desired-state=running",
                                                       f"{PREFIX_STUDENT}-bob").stdout.split()).stdout)[0]
    bob_ip = bob_task["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
    assert reach("alice", f"{PREFIX_STUDENT}-bob", 8888).startswith("refused"), "alice reached bob's server"
    assert reach("alice", bob_ip, 8888).startswith("refused"), "alice reached bob's server by its address"
    hub_on_bobs = json.loads(engine(1, "network", "inspect", f"{NETWORK}-bob").stdout)[0]["Containers"].values()
    hub_on_bobs_ip = next(c["IPv4Address"].split("/")[0] for c in hub_on_bobs if c["Name"] == HUB)
    assert reach("alice", hub_on_bobs_ip, 8081).startswith("refused"), "alice reached the hub on bob's network"

    # Alice's work stays on her node: stopped and started again, her server is back there, her file with it.
    in_server("alice", "open('/home/student/mine.txt', 'w').write('kept')")
    stop_server(token, "alice")
    assert f"{NETWORK}-alice" not in engine(1, "network", "ls", "--format", "{{.Name}}").stdout
    seconds["alice, again"] = start_server(token, "alice")
    assert node_of("alice") == nodes["alice"]
    assert in_server("alice", "print(open('/home/student/mine.txt').read())") == "kept"

    # Her node drained: her start fails at once, saying where her files are, instead of starting empty elsewhere.
    stop_server(token, "alice")
    engine(1, "node", "update", "--availability", "drain", nodes["alice"])
    status, out = hub_api(token, "POST", "/hub/api/users/alice/server")
    deadline = time.time() + 30
    while "files are on the node" not in hub_log():
        assert time.time() < deadline, hub_log()
        time.sleep(0.5)
    engine(1, "node", "update", "--availability", "active", nodes["alice"])
    print("seconds until ready:", json.dumps({k: round(v, 2) for k, v in seconds.items()}))
