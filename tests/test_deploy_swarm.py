"""The classroom's Docker Swarm, formed by the deploy from the inventory, on a cluster this test makes and removes.

The cluster is three Docker engines, each a separate dockerd in a network namespace of its own (own data root,
exec root, socket and host name), joined by a bridge in a fourth namespace on a private subnet. The host's own
dockerd is never put in swarm mode. The swarm role runs against the three engines through an inventory, as
site.yml runs it: engine 1 is the [hub] host (the manager), engines 2 and 3 are [nodes] (and, for the deployed
classroom and the grading test, [graders]).
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import sys
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest

from autograder.results import read_results
from tests.test_autograder import grader_image  # noqa: F401 - the grader image, built (a fixture)
from tests.test_deploy import RECAP, SLOT, VARS, changed_tasks, explain

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))
from hubclient import HubClient, HubError  # noqa: E402

pytestmark = [pytest.mark.deploy, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PREFIX = f"tt{SLOT}sw"                          # namespaces tt<slot>sw-lan, tt<slot>sw-<i>
HOST_LINK = f"{PREFIX}-h"                        # this machine's own veth on the cluster's lan (to reach the hub)
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
    sh("ip", "link", "del", HOST_LINK, check=False)  # its peer went with the lan; gone with it, unless held
    subprocess.run(["rm", "-rf", str(STATE)], timeout=900)  # the engines' images: a GB or more
    IN_USE.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def engines():
    stop_everything()  # first: a run that was killed leaves its cluster, with its route, on this subnet
    routes = json.loads(sh("ip", "-j", "-4", "route").stdout)
    taken = [r["dst"] for r in routes if r["dst"] != "default" and ipaddress.ip_network(r["dst"], strict=False).overlaps(SUBNET)]
    assert not taken, f"the test cluster's subnet {SUBNET} overlaps this host's routes {taken}: pick another"
    # The three engines' hosts share this machine's one package database, which separate hosts never do: the swarm
    # role's apt install of the Docker SDK ran on all three at once there, and on a fresh machine the manager's
    # next task once found no SDK. Installed once here, the role's install task finds it on each "host".
    sh("apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=60", "python3-docker")
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


def in_namespace_python(i: int) -> Path:
    """A Python that runs in engine i's network namespace: a module given it as its interpreter (iptables) changes
    that engine's network stack, as on a host of its own, not this machine's."""
    wrapper = STATE / f"e{i}" / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec nsenter --net=/var/run/netns/{PREFIX}-{i} /usr/bin/python3 "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def engine_rules(i: int) -> str:
    """iptables -S in engine i's network namespace: the rules of that engine's own network stack."""
    return sh("nsenter", f"--net=/var/run/netns/{PREFIX}-{i}", "iptables", "-S").stdout


def inventory_host(i: int, in_namespace: bool = False) -> str:
    """Engine i as an inventory host; in_namespace: its modules run in the engine's network namespace."""
    return (f"e{i} ansible_connection=local tinytorch_docker_host={socket_of(i)} swarm_advertise_addr={address(i)}"
            + (f" ansible_python_interpreter={in_namespace_python(i)}" if in_namespace else ""))


def inventory(path: Path, nodes: list[int], graders: tuple[int, ...] = (1,), in_namespaces: bool = False) -> Path:
    def host(i: int) -> str:
        return inventory_host(i, in_namespaces)
    path.write_text("[hub]\n" + host(1) + "\n\n[nodes]\n" + "".join(host(i) + "\n" for i in nodes)
                    + "\n[graders]\n" + "".join(host(i) + "\n" for i in graders) + "\n[classroom:children]\nhub\nnodes\ngraders\n\n"
                    "[classroom:vars]\nansible_python_interpreter=/usr/bin/python3\n")
    return path


def swarm_playbook(tmp_path: Path, hosts: Path, *args: str, playbook: str = "swarm.yml") -> tuple[subprocess.CompletedProcess, dict]:
    """site.yml's swarm step alone (the rest of site.yml needs a whole classroom on each engine), with the deploy's
    group_vars and roles; playbook="isolation.yml": its next step, the students' nodes' rules."""
    play = tmp_path / "play"
    if not play.exists():
        play.mkdir()
        (play / "group_vars").symlink_to(DEPLOY / "group_vars")
        (play / "roles").symlink_to(DEPLOY / "roles")
        (play / "swarm.yml").write_text(
            "- name: The classroom's swarm\n  hosts: classroom\n  become: true\n  gather_facts: false\n"
            "  module_defaults:\n    group/community.docker.docker:\n      docker_host: '{{ tinytorch_docker_host }}'\n"
            "  environment:\n    DOCKER_HOST: '{{ tinytorch_docker_host }}'\n"
            "  tasks:\n    - name: Form the swarm.\n      ansible.builtin.import_role:\n        name: swarm\n"
            "      when: tinytorch_swarm and inventory_hostname in tinytorch_swarm_members\n")
        (play / "isolation.yml").write_text(
            "- name: The students' nodes\n  hosts: classroom\n  become: true\n  gather_facts: false\n"
            "  tasks:\n    - name: Keep the students' servers off the node.\n      ansible.builtin.import_role:\n"
            "        name: swarm\n        tasks_from: isolation\n      when: inventory_hostname in groups['nodes']\n")
    result = subprocess.run([str(DEPLOY / ".venv" / "bin" / "ansible-playbook"), "-i", str(hosts),
                             str(play / playbook), *args], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "ANSIBLE_CONFIG": str(DEPLOY / "ansible.cfg")})
    recap = {m[0]: {"changed": int(m[2]), "failed": int(m[4])} for m in RECAP.findall(result.stdout)}
    return result, recap


def ansible_value(hosts: Path, host: str, variable: str):
    """A variable as the deploy's group_vars make it for this host of this inventory (its YAML text)."""
    done = subprocess.run([str(DEPLOY / ".venv" / "bin" / "ansible"), "-i", str(hosts), host, "-m", "debug",
                           "-a", f"var={variable}", "--playbook-dir", str(DEPLOY)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "ANSIBLE_CONFIG": str(DEPLOY / "ansible.cfg")})
    assert done.returncode == 0, done.stdout + done.stderr
    return re.search(rf"^\s*{variable}: (.*)$", done.stdout, re.M).group(1)


def swarm_nodes() -> list[dict]:
    """Every node of the swarm, as the manager (engine 1) inspects them."""
    return json.loads(engine(1, "node", "inspect", *engine(1, "node", "ls", "-q").stdout.split()).stdout)


def nodes_of_swarm() -> dict[str, dict]:
    """Host name -> state, availability and labels of each node."""
    return {n["Description"]["Hostname"]: {"state": n["Status"]["State"], "availability": n["Spec"]["Availability"],
                                           "labels": n["Spec"].get("Labels") or {}} for n in swarm_nodes()}


def node_names() -> dict[str, str]:
    """Node id -> host name (results name a job's node by its id)."""
    return {n["ID"]: n["Description"]["Hostname"] for n in swarm_nodes()}


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

    # No [nodes], engine 3 a grader: a swarm for grading jobs only (students' servers stay on the hub host).
    graders_only = inventory(tmp_path / "graders-only.ini", nodes=[], graders=(3,))
    grading, recap = swarm_playbook(tmp_path, graders_only)
    assert grading.returncode == 0, explain(grading)
    nodes = nodes_of_swarm()
    assert set(nodes) == {f"{PREFIX}-1", f"{PREFIX}-3"}, nodes
    assert (nodes[f"{PREFIX}-1"]["labels"], nodes[f"{PREFIX}-3"]["labels"]) == (
        {"tinytorch.hub": "true"}, {"tinytorch.graders": "true"}), nodes
    assert ansible_value(graders_only, "e1", "tinytorch_students_on_swarm") == "false"
    # A run without the manager (--limit, as a grader host is added) leaves the swarm as it is: engine 3 stays in it.
    limited, recap = swarm_playbook(tmp_path, graders_only, "--limit", "e3")
    assert limited.returncode == 0 and "the swarm is left as it is" in limited.stdout, explain(limited)
    assert nodes_of_swarm() == nodes

    # Back in the inventory, engine 2 (removed as the graders' swarm formed) leaves the swarm it still believes it is
    # in and joins again; engine 3 is a students' node again.
    back, recap = swarm_playbook(tmp_path, three)
    assert back.returncode == 0, explain(back)
    nodes = nodes_of_swarm()
    assert set(nodes) == {f"{PREFIX}-1", f"{PREFIX}-2", f"{PREFIX}-3"}, nodes
    assert nodes[f"{PREFIX}-2"]["labels"] == nodes[f"{PREFIX}-3"]["labels"] == {"tinytorch.students": "true"}, nodes


def test_students_containers_on_a_node_reach_neither_the_node_nor_any_hosts_swarm_ports(engines, grader_image, tmp_path):
    """A student's server on a [nodes] host reaches the internet through the node's docker_gwbridge. The node's rules
    (swarm/tasks/isolation.yml, site.yml's step after the swarm's; Ansible runs them inside each engine's namespace,
    as on a host of its own) keep it off the node itself and off every host's swarm ports. Probed from a container on
    an overlay network on engine 2, before the rules (each probe gets through) and after (none does)."""
    formed, _ = swarm_playbook(tmp_path, inventory(tmp_path / "three.ini", nodes=[2, 3]))
    assert formed.returncode == 0, explain(formed)
    load_image(grader_image, 2)
    network = f"{PREFIX}-probe"
    engine(1, "network", "create", "--driver", "overlay", "--attachable", network)
    targets = {"the node itself": (address(2), 7946), "the manager's control port": (address(1), 2377),
               "the manager's gossip port": (address(1), 7946)}

    def probe() -> dict[str, str]:
        return {what: engine(2, "run", "--rm", "--network", network, "--entrypoint", "python3", grader_image,
                             "-c", REACH, host, str(port)).stdout.strip() for what, (host, port) in targets.items()}

    try:
        before = probe()
        assert all(said == "reached" for said in before.values()), before  # what the rules must stop gets through
        hosts = inventory(tmp_path / "in-namespaces.ini", nodes=[2, 3], in_namespaces=True)
        first, recap = swarm_playbook(tmp_path, hosts, playbook="isolation.yml")
        assert first.returncode == 0, explain(first)
        for i in (2, 3):  # every rule, in its chain (the comments are the role's)
            listing = engine_rules(i)
            for rule in ('-A INPUT -i docker_gwbridge -m comment --comment "tinytorch: students off the node" -j DROP',
                         "-A DOCKER-USER -d 169.254.0.0/16 -i docker_gwbridge",
                         "-A DOCKER-USER -i docker_gwbridge -p tcp -m tcp --dport 2377",
                         "-A DOCKER-USER -i docker_gwbridge -p udp -m udp --dport 4789"):
                assert rule in listing, f"engine {i} lacks {rule!r}:\n{listing}"
        assert "tinytorch: " not in (listing := engine_rules(1)), listing  # the hub host is no students' node here
        assert "students off the node" not in sh("iptables", "-S").stdout, "the rules went to this machine's own stack"
        after = probe()
        assert all(said.startswith("refused") for said in after.values()), after
        again, recap = swarm_playbook(tmp_path, hosts, playbook="isolation.yml")
        assert again.returncode == 0 and all(r["changed"] == 0 for r in recap.values()), changed_tasks(again.stdout)
    finally:
        engine(1, "network", "rm", network, check=False)


def test_bad_swarm_variables_stop_the_deploy_before_anything_changes(tmp_path):
    root = tmp_path / "never-created"
    (tmp_path / "vars.json").write_text(json.dumps({**VARS, "tinytorch_root": str(root)}))
    hosts = tmp_path / "inventory.ini"
    hosts.write_text(
        "[hub]\nlocalhost ansible_connection=local swarm_advertise_addr=the-hub\n\n"
        "[nodes]\nnode1 ansible_connection=local tinytorch_docker_host=/var/run/docker.sock swarm_advertise_addr=10.0.0.2\n"
        "node2 ansible_connection=local\n\n"
        "[graders]\nlocalhost ansible_connection=local\n\n"
        "[classroom]\nnode1\n\n[classroom:children]\nhub\ngraders\n\n"
        "[classroom:vars]\nansible_python_interpreter=/usr/bin/python3\n")
    result = subprocess.run(["bash", str(DEPLOY / "deploy.sh"), "-e", f"@{tmp_path / 'vars.json'}"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "INVENTORY": str(hosts)})
    assert result.returncode != 0
    for expected in ["localhost: swarm_advertise_addr: 'the-hub' must be the IPv4 address",
                     "node1: tinytorch_docker_host: '/var/run/docker.sock' must be a Docker engine's socket, unix:///path",
                     "inventory: node2 is in [nodes] but not in [classroom]"]:
        assert expected in result.stdout, f"{expected!r} missing\n{explain(result)}"
    recap = {m[0]: int(m[2]) for m in RECAP.findall(result.stdout)}
    assert recap and all(changed == 0 for changed in recap.values()), recap
    assert not root.exists()
    assert "Swarm: inactive" in subprocess.run(["docker", "info"], capture_output=True, text=True).stdout


IN_USE = Path("/var/lib/tinytorch/images") / f"{PREFIX}.json"  # as a classroom records its images (images role)


def load_image(image: str, i: int) -> None:
    """docker save | docker load: the image reaches the engine without a registry (once: an engine that has it
    keeps it for the module's other tests)."""
    if engine(i, "image", "inspect", image, check=False).returncode == 0:
        return
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    load = subprocess.run(["docker", "-H", socket_of(i), "load"], stdin=save.stdout, capture_output=True,
                          text=True, timeout=900)
    save.stdout.close()
    assert save.wait(timeout=60) == 0 and load.returncode == 0, load.stderr


REACH = ("import socket, sys\n"
         "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close(); print('reached')\n"
         "except OSError as e:\n    print('refused:', e)\n")


# --------------------------------------------------------------------------- the whole classroom, deployed
# site.yml through an inventory onto the three engines: engine 1 the [hub] host alone, engines 2 and 3 both [nodes]
# and [graders]. Every inventory host is this machine (ansible_connection=local), each with its own engine
# (tinytorch_docker_host), so one host path is seen by every node: the classroom root, the students' disk and the
# exchange that the hub serves are the same folders on each node (the stand-in for NFS, which this kernel lacks).
# The engines cannot reach a registry: each image the deploy would build is loaded into each engine that needs it,
# once, at the content tag the deploy computes, so the images role finds it built.
DEPLOYED = f"{PREFIX}d"                          # the deployed classroom's tinytorch_name
DEPLOYED_ROOT = STATE / "srv"                    # its tinytorch_root (on this machine, seen by every engine)
DEPLOYED_PORT = 8443                             # the proxy's port on engine 1's address
# The Locust class (deploy/bench_load.py's students): 10 here; `make bench-load-cluster` sets 50, then 100.
CLUSTER_STUDENTS = int(os.environ.get("TINYTORCH_CLUSTER_STUDENTS", "10"))
CLUSTER_ARRIVE_IN = os.environ.get("TINYTORCH_CLUSTER_ARRIVE_IN", "20")  # seconds over which they arrive
LOAD_STUDENTS = [f"load{i:03d}" for i in range(1, CLUSTER_STUDENTS + 1)]


def host_address() -> str:
    return str(SUBNET[1])


def deploy_inventory(path: Path, nodes_in_namespaces: bool = False) -> Path:
    """The deployed classroom's inventory; nodes_in_namespaces: the [nodes]' modules run in their engines' network
    namespaces (in_namespace_python), so that their iptables rules are the engines' own (the teardown's)."""
    def host(i: int) -> str:  # each host records its engine's images in a folder of its own, as on its own disk
        return inventory_host(i, nodes_in_namespaces and i != 1) + f" tinytorch_images_in_use_dir={STATE}/e{i}/images-in-use"
    path.write_text(f"[hub]\n{host(1)}\n\n[graders]\n{host(2)}\n{host(3)}\n\n[nodes]\n{host(2)}\n{host(3)}\n\n"
                    "[classroom:children]\nhub\nnodes\ngraders\n\n"
                    "[classroom:vars]\nansible_python_interpreter=/usr/bin/python3\n")
    return path


def images_for_the_deploy() -> dict[int, list[str]]:
    """Each engine's images, as site.yml's images_names picks them: the [hub] host builds the hub, student and
    postgres images, a node that is also a grader the student and grader images; every build starts from the base."""
    result = subprocess.run(["bash", str(ROOT / "docker" / "build.sh"), "build", "hub", "student", "postgres",
                             "grader"], capture_output=True, text=True, timeout=3600,
                            env={**os.environ, "PYTHON": str(ROOT / ".venv" / "bin" / "python")})
    assert result.returncode == 0, result.stderr[-3000:]
    tags = dict(line.split("=", 1) for line in result.stdout.split() if "=tinytorch/" in line)
    IN_USE.parent.mkdir(parents=True, exist_ok=True)
    IN_USE.write_text(json.dumps(tags))
    base = "tinytorch/base:bookworm"
    return {1: [base, tags["hub"], tags["student"], tags["postgres"]],
            2: [base, tags["student"], tags["grader"]], 3: [base, tags["student"], tags["grader"]]}


@pytest.fixture(scope="module")
def deployed(engines, tmp_path_factory):
    """The classroom deployed by site.yml onto the cluster; torn down by teardown.yml, whatever happened."""
    here = tmp_path_factory.mktemp("deployed")
    with ThreadPoolExecutor() as pool:  # one load per engine and image, the engines side by side
        loads = [pool.submit(load_image, image, i) for i, images in images_for_the_deploy().items()
                 for image in images]
        for load in loads:
            load.result()
    # This machine joins the cluster's lan, to reach the hub where users would: engine 1's address.
    sh("ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", f"{HOST_LINK}-b")
    sh("ip", "link", "set", f"{HOST_LINK}-b", "netns", f"{PREFIX}-lan")
    sh("ip", "-n", f"{PREFIX}-lan", "link", "set", f"{HOST_LINK}-b", "master", "br0", "up")
    sh("ip", "addr", "add", f"{host_address()}/{SUBNET.prefixlen}", "dev", HOST_LINK)
    sh("ip", "link", "set", HOST_LINK, "up")
    (here / "roster.csv").write_text("username,role,name\nalice,student,Alice A\nbob,student,Bob B\n"
                                     + "".join(f"{name},student,\n" for name in LOAD_STUDENTS))
    (here / "vars.json").write_text(json.dumps({
        **VARS, "tinytorch_name": DEPLOYED, "tinytorch_root": str(DEPLOYED_ROOT), "course_roster_csv": str(here / "roster.csv"),
        "hub_bind_address": address(1), "hub_https_port": DEPLOYED_PORT, "hub_public_host": address(1),
        "tls_subject_alt_names": [f"IP:{address(1)}", "IP:127.0.0.1"],
        # The hub's own network lives inside engine 1's namespace: any subnet that is not the cluster's.
        "hub_subnet": f"10.233.{SLOT}.0/24", "hub_gateway": f"10.233.{SLOT}.1", "hub_ip": f"10.233.{SLOT}.2",
        "hub_ip_range": f"10.233.{SLOT}.128/25",
        # The one-host isolation rules are iptables rules of the hub host's own network stack; Ansible runs them
        # in this machine's, not engine 1's namespace. On a swarm no network holds two students anyway.
        "hub_isolate_students": False}))
    hosts = deploy_inventory(here / "inventory.ini")
    command = ["bash", str(DEPLOY / "deploy.sh"), "-e", f"@{here / 'vars.json'}"]
    state = {"torn down": False}  # set by the teardown's test
    try:
        began = time.monotonic()
        first = subprocess.run(command, capture_output=True, text=True, timeout=3000,
                               env={**os.environ, "INVENTORY": str(hosts)})
        assert first.returncode == 0, explain(first)
        print(f"\ndeploy onto the cluster: {time.monotonic() - began:.0f} s")
        token = (DEPLOYED_ROOT / "secrets" / "api_token").read_text().strip()
        state.update({"first": first, "command": command, "inventory": hosts,
                      "hub": HubClient(f"https://{address(1)}:{DEPLOYED_PORT}", token, ca=str(DEPLOYED_ROOT / "tls" / "hub.crt"))})
        yield state
    finally:
        # Unless the teardown's test got that far: the hub host's part only (a node may be dead by now).
        down = None if state["torn down"] else teardown(command, hosts, "-e", "teardown_remove_data=true", "--limit", "e1")
        sh("ip", "link", "del", HOST_LINK, check=False)
        if down is not None:
            assert down.returncode == 0, explain(down)
            assert not DEPLOYED_ROOT.exists(), "the teardown left the classroom's folder"


def teardown(command: list[str], hosts: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=900,
                          env={**os.environ, "INVENTORY": str(hosts), "PLAYBOOK": "teardown.yml"})


def qgroup_limit(subvolume: Path) -> int:
    """The most bytes a btrfs subvolume may refer to (its quota), as btrfs reports it."""
    shown = sh("btrfs", "qgroup", "show", "-re", "--raw", "-f", str(subvolume)).stdout.splitlines()
    return int(shown[-1].split()[3])


def node_of(name: str) -> str:
    """The host name of the node running the student's server."""
    return engine(1, "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}",
                  f"{DEPLOYED}-student-{name}").stdout.split()[0]


def hub_log(lines: int = 80) -> str:
    """The deployed hub's last lines (JupyterHub logs to stderr)."""
    done = engine(1, "logs", "--tail", str(lines), f"{DEPLOYED}-hub", check=False)
    return done.stdout + done.stderr


def start_server(hub: HubClient, name: str, timeout: float = 300) -> float:
    """HubClient.start_server, with what the hub said when the start fails."""
    try:
        return hub.start_server(name, timeout=timeout)
    except HubError as error:
        raise AssertionError(f"{error}\n--- the hub's log\n{hub_log()}") from error


def running_task(name: str) -> dict:
    """The Swarm task of the student's server, as the manager inspects it."""
    return json.loads(engine(1, "inspect", *engine(1, "service", "ps", "-q", "--filter", "desired-state=running",
                                                   f"{DEPLOYED}-student-{name}").stdout.split()).stdout)[0]


def task_seen_after(name: str) -> float:
    """Seconds from the student's task running (Swarm's own time of it) to the hub's log saying the spawner saw it
    run (tinytorch_swarm's start_object; the log's and the engines' clocks are this machine's)."""
    task = running_task(name)
    assert task["Status"]["State"] == "running", task["Status"]
    whole, _, fraction = task["Status"]["Timestamp"].rstrip("Z").partition(".")
    ran = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp() + float(f"0.{fraction or 0}")
    said = re.findall(rf"^\[I (\S+ \S+) .*{name}'s task {task['ID']} runs on node", hub_log(2000), re.MULTILINE)
    assert said, f"the hub's log does not say it saw {name}'s task {task['ID']} run\n{hub_log()}"
    return datetime.strptime(said[-1], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp() - ran


def in_student_server(name: str, user: str, script: str) -> str:
    """A shell command in the student's server container, on whichever node runs it."""
    node = node_of(name)
    i = int(node.rsplit("-", 1)[1])
    container = engine(i, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={DEPLOYED}-student-{name}"
                       ).stdout.split()[0]
    done = engine(i, "exec", "-u", user, "-w", "/home/student", container, "sh", "-c", script, check=False)
    assert done.returncode == 0, f"on {node}, as {user}: {script}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def reach_from(name: str, host: str, port: int) -> str:
    """What a connection from the student's own server to host:port gives: 'reached' or 'refused: <why>'."""
    return in_student_server(name, name, f"python -c \"import sys; sys.argv = ['', '{host}', {port}]\n{REACH}\"").strip()


def test_the_deployed_classroom_students_on_two_nodes_fetch_and_submit(deployed):
    hub, course = deployed["hub"], "tinytorch"
    seconds = {}
    for name in ("alice", "bob"):
        hub.create_user(name)
        seconds[name] = start_server(hub, name)
    nodes = {name: node_of(name) for name in ("alice", "bob")}
    assert set(nodes.values()) == {f"{PREFIX}-2", f"{PREFIX}-3"}, nodes  # one on each of the [nodes]
    seen_after = {name: round(task_seen_after(name), 2) for name in ("alice", "bob")}
    print("seconds until ready:", json.dumps({k: round(v, 2) for k, v in seconds.items()}), nodes,
          "the hub saw each task run after:", seen_after)
    # The spawner asks every 0.5 s (SwarmSpawner's own growing pauses saw a task running after 3 s at 4.75 s).
    assert all(-0.1 < after < 1.0 for after in seen_after.values()), seen_after

    hub_container, grader = f"{DEPLOYED}-hub", f"grader-{course}"
    released = engine(1, "exec", "-u", grader, "-w", "/srv/nbgrader/course", hub_container,
                      "nbgrader", "release_assignment", "01_setup", "--force", check=False)
    assert released.returncode == 0, released.stderr
    # Each student fetches and submits from a kernel of their own server (through the hub's proxy).
    for name in ("alice", "bob"):
        out = hub.run_code(name, "import subprocess\n"
                           f"for argv in (['nbgrader', 'fetch_assignment', '01_setup', '--course', {course!r}],\n"
                           f"             ['sh', '-c', 'echo {name} was here > 01_setup/{name}.txt'],\n"
                           f"             ['nbgrader', 'submit', '01_setup', '--course', {course!r}]):\n"
                           "    done = subprocess.run(argv, capture_output=True, text=True)\n"
                           "    print(done.stderr[-500:])\n"
                           "    print('exit status', done.returncode)\n")
        assert out.count("exit status 0") == 3, out
    # Neither reaches the other's server, nor reads the other's submission in the shared exchange.
    bob_ip = running_task("bob")["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
    for target in (f"{DEPLOYED}-student-bob", bob_ip):
        said = reach_from("alice", target, 8888)
        assert said.startswith("refused"), f"alice reached bob's server at {target}"
    listing = in_student_server("alice", "alice", f"ls /srv/nbgrader/exchange/{course}/inbound 2>&1 || true")
    assert "Permission denied" in listing, listing

    collected = engine(1, "exec", "-u", grader, "-w", "/srv/nbgrader/course", hub_container,
                       "nbgrader", "collect", "01_setup", "--update", check=False)
    assert collected.returncode == 0, collected.stderr
    submitted = DEPLOYED_ROOT / "course" / "submitted"
    for name in ("alice", "bob"):
        assert (submitted / name / "01_setup" / f"{name}.txt").read_text() == f"{name} was here\n"


def test_the_deployed_classroom_keeps_each_student_on_their_homes_node_within_the_one_host_limits(deployed):
    """A student's server is a Swarm service with the single host's limits; no student reaches the hub through
    another's network; stopped and started again, a server is back on the node holding its home (a subvolume with
    the one host's quota there), the student's file with it; with that node drained, the start fails at once,
    saying where the files are, instead of starting on an empty home elsewhere."""
    hub, hub_container = deployed["hub"], f"{DEPLOYED}-hub"
    for name in ("alice", "bob"):  # running since the test above; started here when this test runs alone
        hub.create_user(name)
        start_server(hub, name)
    spec = json.loads(engine(1, "service", "inspect", f"{DEPLOYED}-student-alice").stdout)[0]["Spec"]["TaskTemplate"]
    assert spec["Resources"]["Limits"] == {"MemoryBytes": 2**30, "NanoCPUs": 10**9, "Pids": 512}, spec
    assert spec["ContainerSpec"]["CapabilityDrop"] == ["ALL"], spec
    mounts = {m["Target"]: m for m in spec["ContainerSpec"]["Mounts"]}
    assert mounts["/tmp"]["Type"] == "tmpfs", mounts
    # Her home: the folder homes/alice on her node's students' file system, a btrfs subvolume (root inode 256) with
    # the one host's quota, made by a one-off Swarm service that is gone once done.
    home = DEPLOYED_ROOT / "student-disk" / "homes" / "alice"
    assert mounts["/home/student"]["Type"] == "bind" and mounts["/home/student"]["Source"] == str(home), mounts
    assert home.stat().st_ino == 256, "alice's home is no subvolume"
    assert qgroup_limit(home) == 100 * 2**20  # VARS' student_disk_home_quota
    assert not [n for n in engine(1, "service", "ls", "--format", "{{.Name}}").stdout.split() if n.endswith("-home")]
    deadline = time.time() + 20  # and so is its container on the node (a removed "replicated-job" kept it)
    while left := [c for i in (2, 3) for c in engine(i, "ps", "-a", "--format", "{{.Names}}").stdout.split()
                   if c.startswith(f"{DEPLOYED}-student-") and "-home." in c]:
        assert time.time() < deadline, left
        time.sleep(1)
    assert not [m for m in mounts.values() if "docker.sock" in m.get("Source", "") or "database" in m.get("Source", "")]

    # The hub joins each student's own network: through bob's, alice reaches nothing of the hub.
    bobs = next(n for n in engine(1, "network", "ls", "--filter", "label=org.tinytorch.role=student-network",
                                  "--format", "{{.Name}}").stdout.split() if n.endswith("-bob"))
    on_bobs = json.loads(engine(1, "network", "inspect", bobs).stdout)[0]["Containers"].values()
    hub_there = next(c["IPv4Address"].split("/")[0] for c in on_bobs if c["Name"] == hub_container)
    said = reach_from("alice", hub_there, 8081)
    assert said.startswith("refused"), f"alice reached the hub on bob's network at {hub_there}"
    # On her own network alice reaches the hub's API and nothing else of the hub or the proxy: the page services
    # and the proxy's API listen only on their containers' addresses on the hub's own network.
    alices = bobs[:-len("bob")] + "alice"
    on_alices = {c["Name"]: c["IPv4Address"].split("/")[0]
                 for c in json.loads(engine(1, "network", "inspect", alices).stdout)[0]["Containers"].values()}
    reached = {f"{who} {port}": reach_from("alice", on_alices[container], port)
               for who, container, port in (("hub", hub_container, 8081), ("hub", hub_container, 9999),
                                            ("hub", hub_container, 9998), ("hub", hub_container, 9997),
                                            ("proxy", f"{DEPLOYED}-proxy", 8001))}
    assert reached["hub 8081"] == "reached" and all(said.startswith("refused") for what, said in reached.items()
                                                    if what != "hub 8081"), reached

    node = node_of("alice")
    in_student_server("alice", "alice", "echo kept > mine.txt")
    hub.stop_server("alice")
    seconds = start_server(hub, "alice")
    assert node_of("alice") == node
    assert in_student_server("alice", "alice", "cat mine.txt") == "kept\n"
    print(f"alice started again on {node} in {seconds:.1f} s")

    hub.stop_server("alice")
    engine(1, "node", "update", "--availability", "drain", node)
    try:
        with pytest.raises(HubError):
            hub.start_server("alice", timeout=60)
        deadline = time.time() + 30
        while f"alice's files are on the node {node} (" not in (log := hub_log()):  # its host name, then its id
            assert time.time() < deadline, log[-4000:]
            time.sleep(0.5)
    finally:
        engine(1, "node", "update", "--availability", "active", node)


def test_the_grading_page_grades_as_swarm_jobs_on_the_graders_when_the_hub_host_is_none(deployed):
    """The [hub] host is no grader in this inventory: the grading agent still runs there, and a TA's "grade" (what
    the grading page asks it, over its socket) collects the students' submissions and grades each as a Swarm job
    on the [graders], engines 2 and 3."""
    sock = DEPLOYED_ROOT / "grading" / "socket" / "agent.sock"

    def agent(method: str, path: str, body: dict | None = None) -> dict:
        data = ["-H", "Content-Type: application/json", "-d", json.dumps(body)] if body else []
        return json.loads(sh("curl", "-sS", "--unix-socket", str(sock), "-X", method, f"http://agent{path}", *data).stdout)

    run = agent("POST", "/runs", {"action": "grade", "assignment": "01_setup", "by": "tina"})
    deadline = time.time() + 600
    while (view := agent("GET", f"/runs/{run['id']}"))["state"] == "running":
        assert time.time() < deadline, view["log"][-20:]
        time.sleep(2)
    log = "\n".join(view["log"])
    assert view["state"] in ("done", "problems") and "as Swarm jobs on the grader nodes" in log, log
    assert f"{PREFIX}-1" not in log.split("as Swarm jobs on the grader nodes", 1)[1].splitlines()[0], log
    results = read_results(DEPLOYED_ROOT / "course", "01_setup")
    names = node_names()
    assert {"alice", "bob"} <= set(results), results.keys()
    assert {names[r["node"]] for r in results.values()} <= {f"{PREFIX}-2", f"{PREFIX}-3"}, results
    assert all(view["submissions"][name]["state"] == "graded" for name in ("alice", "bob")), view["submissions"]


def test_a_class_arriving_at_once_spreads_over_both_nodes_and_all_get_through(deployed):
    """The deploy tests' Locust class (deploy/bench_load.py) on the cluster: CLUSTER_STUDENTS students sign up, are
    approved, log in on the login page, start their servers (Swarm services, spread over the two [nodes]), run a
    cell, fetch and submit 01_setup from the Assignments tab's own requests and stop, with no error. The results
    file (results/deploy/cluster-load-<N>.json with TINYTORCH_CLUSTER_STUDENTS set: `make bench-load-cluster`)
    has every step's figures, next to the one-host ones in docs/admins.md."""
    n = CLUSTER_STUDENTS
    out = (ROOT / "results" / "deploy" / f"cluster-load-{n}.json" if "TINYTORCH_CLUSTER_STUDENTS" in os.environ
           else DEPLOYED_ROOT.parent / "cluster-load.json")
    run = subprocess.run([sys.executable, str(DEPLOY / "bench_load.py"), "--root", str(DEPLOYED_ROOT),
                          "--url", f"https://{address(1)}:{DEPLOYED_PORT}", "--name", DEPLOYED,
                          "--students", str(n), "--arrive-in", CLUSTER_ARRIVE_IN, "--assignment", "01_setup",
                          "--engines", *(socket_of(i) for i in ENGINES), "--out", str(out)],
                         capture_output=True, text=True, timeout=3000)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    print(f"\n{n} students on the cluster: {json.dumps(result['steps'])} {result['students_at_once_per_engine']}")
    assert all(step["done"] == n and step["errors"] == 0 for step in result["steps"].values()), result
    on_nodes = result["students_at_once_per_engine"]
    assert on_nodes.get(socket_of(2), 0) > 0 and on_nodes.get(socket_of(3), 0) > 0, on_nodes  # both [nodes]
    assert on_nodes.get(socket_of(1), 0) == 0, on_nodes  # the hub host is not a node
    assert result["containers"]["hub"]["peak_mem_mib"] > 0 and result["student_server_mem_mib"]["median"] > 0
    assert 0 < result["machine"]["busy_share"] <= 1, result["machine"]


def test_the_deployed_classroom_second_run_changes_nothing(deployed):
    again = subprocess.run(deployed["command"], capture_output=True, text=True, timeout=1800,
                           env={**os.environ, "INVENTORY": str(deployed["inventory"])})
    assert again.returncode == 0, explain(again)
    recap = {m[0]: int(m[2]) for m in RECAP.findall(again.stdout)}
    assert set(recap) == {"e1", "e2", "e3"} and all(c == 0 for c in recap.values()), changed_tasks(again.stdout)


def test_the_teardown_takes_the_classroom_off_every_host_and_ends_the_swarm_when_asked(deployed, tmp_path):
    """teardown.yml on the cluster: by default the students' services and their networks go from the swarm and the
    [nodes]' rules from the nodes, while the data (the classroom's folder, the homes on the nodes) and the swarm stay;
    with teardown_remove_data and teardown_remove_swarm the homes on the nodes go too and every engine leaves."""
    hosts = deploy_inventory(tmp_path / "teardown.ini", nodes_in_namespaces=True)
    rules = f'--comment "{DEPLOYED}: students off the node"'

    def names(i: int, *what: str) -> list[str]:
        return engine(i, *what, "ls", "--format", "{{.Name}}").stdout.split()

    def homes() -> list[str]:  # the students' homes on the nodes' file system (one folder on this one machine)
        folder = DEPLOYED_ROOT / "student-disk" / "homes"
        return sorted(p.name for p in folder.iterdir() if p.stat().st_ino == 256) if folder.is_dir() else []

    # The deployed classroom's rules on its nodes (site.yml's step; off in this module's deploy, see `deployed`).
    applied, _ = swarm_playbook(tmp_path, hosts, "-e", f"tinytorch_name={DEPLOYED}", playbook="isolation.yml")
    assert applied.returncode == 0, explain(applied)
    assert all(rules in engine_rules(i) for i in (2, 3)), engine_rules(2)
    start_server(deployed["hub"], "alice")  # a student's server (and its network) running when the classroom goes
    assert f"{DEPLOYED}-student-alice" in names(1, "service"), names(1, "service")
    before = homes()
    assert {"alice", "bob"} <= set(before), before  # the students' homes, made on both nodes
    assert not [v for i in (2, 3) for v in names(i, "volume") if v.startswith(f"{DEPLOYED}-home-")]  # no volumes

    down = teardown(deployed["command"], hosts)
    assert down.returncode == 0, explain(down)
    assert not [n for n in names(1, "service") if n.startswith(f"{DEPLOYED}-")], names(1, "service")
    assert not [n for n in names(1, "network") if n.startswith(f"{DEPLOYED}-students")], names(1, "network")
    for i in (2, 3):
        assert rules not in (left := engine_rules(i)) and f"{DEPLOYED}: " not in left, f"engine {i}:\n{left}"
    # The data stays: the classroom's folder and the students' file system, unmounted, its homes inside.
    image, disk = DEPLOYED_ROOT / "student-disk.img", tmp_path / "disk"
    assert homes() == [] and image.is_file()
    disk.mkdir()
    sh("mount", "-o", "loop,ro", str(image), str(disk))
    try:
        assert sorted(p.name for p in (disk / "homes").iterdir() if not p.name.startswith(".")) == before
    finally:
        sh("umount", str(disk))
    assert all(swarm_state(i) == "active" for i in ENGINES)  # and the swarm

    deployed["torn down"] = True
    gone = teardown(deployed["command"], hosts, "-e", "teardown_remove_data=true", "-e", "teardown_remove_swarm=true")
    assert gone.returncode == 0, explain(gone)
    assert not DEPLOYED_ROOT.exists(), "the teardown left the classroom's folder"
    assert homes() == []
    assert {i: swarm_state(i) for i in ENGINES} == {1: "inactive", 2: "inactive", 3: "inactive"}


def swarm_state(i: int) -> str:
    return engine(i, "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


# --------------------------------------------------------------------------- grading as Swarm jobs on the [graders]
# `autograder grade` on the manager (engine 1: DOCKER_HOST) grades each submission as a Swarm job on engines 2 and 3,
# the [graders]; the same submissions graded by the local runner (this host's dockerd) give the same results.
GRADING_SLUG = "02_tensor"
READS_THE_SECRETS = r"""
import glob as _glob, os as _os
def _got_a_secret():
    # the job's bundle (hidden tests, the nonce) is in /run/secrets and in the grader's memory: any of it readable?
    for path in _glob.glob("/run/secrets/*") + ["/proc/1/environ", "/proc/1/maps", "/proc/1/fd/1"]:
        try:
            with open(path, "rb") as f:
                f.read(1)
            return True
        except OSError:
            pass
    try:
        with open("/proc/1/mem", "rb") as mem:
            for low in [0x400000, 0x10000, 0x555555554000]:
                try:
                    mem.seek(low)
                    mem.read(4096)
                    return True
                except OSError:
                    pass
    except OSError:
        pass
    for become_root in (lambda: _os.setuid(0), lambda: _os.setgid(0)):
        try:
            become_root()
            return True
        except OSError:
            pass
    return False
"""


def grading_submissions(tmp_path: Path) -> dict[str, Path]:
    """Six submissions of module 02: two reference solutions, a wrong multiplication, a broken add, one that scores
    full marks only if it can read its job's secrets or the grader's memory (it deserves the broken add's score), and
    one that scores full marks only with no network interface but lo (it deserves the reference's)."""
    from tests.test_autograder import reference_notebook, with_payload, write_notebooks
    from tests.test_autograder_hostile import CORRECT, HONEST, RAISE, hostile_add

    payloads = {"refone": "", "reftwo": "", "wrongmul": HONEST["wrong multiplication"], "raises": RAISE,
                "secrets": hostile_add(f"if _got_a_secret():\n    {CORRECT}\nraise RuntimeError('nothing read')",
                                       READS_THE_SECRETS),
                "isolated": hostile_add("import socket\nif [n for _, n in socket.if_nameindex()] != ['lo']:\n"
                                        f"    raise RuntimeError('a network interface')\n{CORRECT}")}
    return {name: write_notebooks(tmp_path / "notebooks" / name, {GRADING_SLUG: with_payload(
        reference_notebook(GRADING_SLUG), payload) if payload else reference_notebook(GRADING_SLUG)})[GRADING_SLUG]
        for name, payload in payloads.items()}


def graded_course(root: Path, submissions: dict[str, Path], image: str, env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    """A fresh course directory, the submissions as an LMS zip, `autograder grade` run in it with ``env``."""
    from autograder import coursedir
    from tests.test_autograder import canvas_zip, course_config

    (root.parent / "exchange").mkdir(mode=0o777, parents=True)
    coursedir.write_course_directory(root, course_config("tt101", root, root.parent / "exchange", tuple(submissions)))
    archive = canvas_zip(root.parent / f"{root.name}.zip", submissions, GRADING_SLUG)
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "autograder", "grade", GRADING_SLUG, "--zip",
                           str(archive), "--image", image, "--no-progress"], cwd=root, capture_output=True, text=True,
                          timeout=1800, env=env)
    return done, read_results(root, GRADING_SLUG)


def comparable(result: dict) -> dict:
    """A result without what differs from run to run (times, when, where)."""
    drop = {"seconds", "container_seconds", "graded_at", "node", "attempts"}
    return {k: [{kk: vv for kk, vv in t.items() if kk != "seconds"} for t in v] if k in ("tests", "visible") else v
            for k, v in result.items() if k not in drop}


def test_grading_runs_as_swarm_jobs_on_the_grader_nodes_and_scores_as_the_local_runner(engines, grader_image, tmp_path):
    formed, _ = swarm_playbook(tmp_path, inventory(tmp_path / "graders.ini", nodes=[2, 3], graders=(2, 3)))
    assert formed.returncode == 0, explain(formed)
    image = grader_image
    IN_USE.parent.mkdir(parents=True, exist_ok=True)
    IN_USE.write_text(json.dumps({**(json.loads(IN_USE.read_text()) if IN_USE.exists() else {}), "grader": image}))
    with ThreadPoolExecutor() as pool:
        for load in [pool.submit(load_image, image, i) for i in (2, 3)]:
            load.result()
    submissions = grading_submissions(tmp_path)
    here = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    local, local_results = graded_course(tmp_path / "local" / "course", submissions, image, here)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "as hardened containers on this host" in local.stdout, local.stdout

    began = time.monotonic()
    swarm, swarm_results = graded_course(tmp_path / "swarm" / "course", submissions, image,
                                         {**here, "DOCKER_HOST": socket_of(1)})
    seconds = time.monotonic() - began
    assert swarm.returncode == 0, swarm.stdout + swarm.stderr
    assert f"as Swarm jobs on the grader nodes {PREFIX}-2, {PREFIX}-3, 4 at a time" in swarm.stdout, swarm.stdout

    # The same results, test by test, and the same gradebook lines; the hostile ones got what they deserve.
    assert set(swarm_results) == set(submissions), swarm_results.keys()
    for name in submissions:
        assert comparable(swarm_results[name]) == comparable(local_results[name]), name
    scores = {name: r["score"] for name, r in swarm_results.items()}
    possible = swarm_results["refone"]["possible"]
    assert scores["refone"] == scores["reftwo"] == scores["isolated"] == possible, scores
    assert scores["secrets"] == scores["raises"] < possible and scores["wrongmul"] < possible, scores
    lines = {course: [line for line in run.stdout.splitlines() if line.startswith("  ")] for course, run in
             (("local", local), ("swarm", swarm))}
    assert lines["local"] == lines["swarm"], lines
    for csv_file in ("autograder/02_tensor/final_grades.csv", "autograder/canvas_gradebook.csv"):
        assert (tmp_path / "swarm" / "course" / csv_file).read_text() == (tmp_path / "local" / "course" / csv_file).read_text()

    # Jobs ran on both grader nodes, and nothing of them is left on the swarm.
    names = node_names()
    spread = {name: names[r["node"]] for name, r in swarm_results.items()}
    assert set(spread.values()) == {f"{PREFIX}-2", f"{PREFIX}-3"}, spread
    assert engine(1, "service", "ls", "-q").stdout.split() == [] or not any(
        "ttgrade" in line for line in engine(1, "service", "ls", "--format", "{{.Name}}").stdout.split()), \
        engine(1, "service", "ls").stdout
    assert not [s for s in engine(1, "secret", "ls", "--format", "{{.Name}}").stdout.split() if s.startswith("ttgrade")]
    deadline = time.time() + 20  # nor on the nodes: their tasks and containers (a removed "replicated-job" keeps both)
    nodes = [f"{PREFIX}-{i}" for i in ENGINES]
    while left := (engine(1, "node", "ps", "-q", "--filter", "name=ttgrade-", *nodes).stdout.split()
                   + [c for i in (2, 3) for c in engine(i, "ps", "-aq", "--filter", "name=ttgrade-").stdout.split()]):
        assert time.time() < deadline, left
        time.sleep(1)
    print(f"6 submissions as Swarm jobs in {seconds:.1f} s (autograder grade, start to end); nodes: {json.dumps(spread)}")

    # Engine 3 dies mid-batch (its dockerd and every process of its containers killed): its jobs are given to the
    # swarm again and the batch ends with the same complete gradebook.
    course = tmp_path / "swarm" / "course"
    regrade = subprocess.Popen([str(ROOT / ".venv" / "bin" / "python"), "-m", "autograder", "grade", GRADING_SLUG,
                                "--no-collect", "--force", "--image", image, "--no-progress"], cwd=course,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**here, "DOCKER_HOST": socket_of(1)})
    deadline = time.time() + 120
    while f"{PREFIX}-3 Running" not in engine(1, "service", "ps", "--format", "{{.Node}} {{.CurrentState}}",
                                              *running_jobs(), check=False).stdout:  # its task's current state
        assert time.time() < deadline and regrade.poll() is None, "no job ran on engine 3"
        time.sleep(0.3)
    kill_engine(3)
    output, _ = regrade.communicate(timeout=900)
    assert regrade.returncode == 0, output
    again = read_results(course, GRADING_SLUG)
    assert {name: comparable(r) for name, r in again.items()} == {name: comparable(r) for name, r in local_results.items()}
    moved = {name: names[r["node"]] for name, r in again.items() if r.get("attempts", 1) > 1}
    assert moved and set(moved.values()) == {f"{PREFIX}-2"}, {name: (r["node"], r.get("attempts")) for name, r in again.items()}
    print(f"engine 3 killed mid-batch: given again and graded on engine 2: {sorted(moved)}")


def running_jobs() -> list[str]:
    return [n for n in engine(1, "service", "ls", "--format", "{{.Name}}").stdout.split() if n.startswith("ttgrade-")]


def kill_engine(i: int) -> None:
    """The node dies: its dockerd (and the containerd it started) and every process of its containers, killed."""
    daemon = DAEMONS[i]
    os.killpg(daemon.pid, signal.SIGKILL)
    daemon.wait(timeout=30)
    for procs in Path(f"/sys/fs/cgroup/pids/{PREFIX}-{i}").glob("*/cgroup.procs"):
        for pid in procs.read_text().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
