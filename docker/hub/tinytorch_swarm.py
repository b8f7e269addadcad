"""Students' servers across the nodes of a Docker Swarm (the inventory's [nodes]), with the one host's limits.

``StudentSwarmSpawner`` is DockerSpawner's SwarmSpawner (one Swarm service per student's server) plus what the
classroom needs of it; hub_config.py picks it when the course config has ``spawner.swarm.enabled``.

- **Where.** A server runs on a node labelled ``<node_label>=true`` (the deploy's swarm role labels [nodes]).
- **Home.** Each student's home is a Docker volume (hub_config's ``spawner.swarm.home_volume``) on the node of their first server. The hub
  keeps that node's id in the spawner's state (its database), and every later start is pinned there
  (placement constraint ``node.id == <it>``): a student never lands on an empty home. A start whose node is
  gone, down or drained fails at once with a message saying so; no other node has the files.
- **Isolation.** Each student's server is alone on an attachable overlay network of its own
  (``<network>-<username>``) that the hub and the proxy join (``attach``): no network holds two students, so a
  student's server has no route to another's. Its way out is the node's docker_gwbridge (NAT to the internet;
  Docker turns off inter-container traffic on it).
- **Limits.** As under DockerSpawner (hub_config.update_spawner): memory and CPU (the service's resources),
  pids (``Limits.Pids``, Engine API 1.41: docker-py's Resources has no argument for it, so it is added to the
  request), capabilities, tmpfs folders, a bounded log. Swarm cannot set no-new-privileges before Engine API
  1.46; the image's entry point (start-student.sh) drops to the student's uid with ``setpriv --no-new-privs``
  and an empty bounding set, so the student's processes run with it all the same.
"""
from __future__ import annotations

import asyncio

from docker.errors import APIError, NotFound
from docker.types import Mount
from dockerspawner import SwarmSpawner
from tinytorch_start import QueuedStart
from traitlets import Dict, Float, Integer, List, Unicode

# A task in one of these states may still run (SwarmSpawner's own list: "rejected" is retried by Swarm).
NOT_RUNNING_YET = {"new", "assigned", "accepted", "starting", "pending", "preparing", "ready", "rejected"}


class StudentSwarmSpawner(QueuedStart, SwarmSpawner):
    """SwarmSpawner whose students are pinned to their home's node, each on a network of their own."""

    node_label = Unicode("tinytorch.students", config=True, help="Nodes with this label = true take servers.")
    attach = List(Unicode(), config=True, help="Containers (the hub, the proxy) joined to each student's network.")
    pids_limit = Integer(512, config=True, help="Processes per server.")
    tmpfs = Dict(config=True, help="Folder -> size (512m): in memory, within the memory limit.")
    home_node = Unicode("", help="The id of the node holding this student's home ('' until the first start).")
    task_poll_interval = Float(0.5, min=0.05, config=True, help="Seconds between checks that the server's task runs.")

    @property
    def student_network(self) -> str:
        return f"{self.network_name}-{self.user.name}"

    # --- the home's node, kept in the hub's database with the spawner's state (never cleared on stop) ---------
    def get_state(self):
        state = super().get_state()
        if self.home_node:
            state["home_node"] = self.home_node
        return state

    def load_state(self, state):
        super().load_state(state)
        self.home_node = state.get("home_node", self.home_node)

    async def check_home_node(self) -> None:
        """A student pinned to a node that cannot run their server is told why, not left pending."""
        where = f"the node {self.home_node}"
        try:
            node = await self.docker("inspect_node", self.home_node)
        except (NotFound, APIError):
            problem = "is no longer in the swarm"
        else:
            state, availability = node["Status"]["State"], node["Spec"]["Availability"]
            where = f"the node {node['Description']['Hostname']} ({self.home_node})"
            problem = (f"is {state}" if state != "ready" else f"is set to {availability}" if availability != "active"
                       else "")
        if problem:
            raise RuntimeError(f"{self.user.name}'s files are on {where}, which {problem}: "
                               "ask an admin to bring that node back (docs/admins.md, Docker Swarm)")

    # --- the student's own network -----------------------------------------------------------------------------
    async def ensure_network(self) -> None:
        """The student's network, with the hub and the proxy on it. The network this student's last stop removed
        stays listed by the manager's engine for a moment after Swarm has forgotten it, and attaching to it then
        fails with "not found" (a student starting again at once did): looked up, made and attached again, for
        10 seconds at most."""
        name = self.student_network
        for attempt in range(20):
            try:
                await self.docker("inspect_network", name)
            except NotFound:
                await self.docker("create_network", name, driver="overlay", attachable=True,
                                  labels={"org.tinytorch.role": "student-network"})
            try:
                for container in self.attach:
                    await self.connect(container, name)
                return
            except APIError as error:
                if "not found" not in str(error).lower() or attempt == 19:
                    raise
                await asyncio.sleep(0.5)

    async def connect(self, container: str, network: str) -> None:
        try:
            await self.docker("connect_container_to_network", container, network)
        except APIError as error:
            if error.status_code != 409:  # 409: attached already (a server started before a hub restart)
                raise

    async def remove_network(self) -> None:
        """The hub and the proxy leave the student's network and it goes (once the server's task is gone)."""
        name = self.student_network
        for container in self.attach:
            try:
                await self.docker("disconnect_container_from_network", container, name)
            except APIError:  # not attached (or the network is gone already)
                pass
        for _ in range(20):
            try:
                await self.docker("remove_network", name)
                return
            except NotFound:
                return
            except APIError:  # the task's endpoint is still being removed
                await asyncio.sleep(0.5)
        self.log.warning("network %s still in use: left for the next start", name)

    # --- the service ----------------------------------------------------------------------------------------------
    @property
    def mounts(self):
        """Host folders (the exchange, the datasets) are bind mounts, the home a volume; then the tmpfs folders."""
        mounts = [Mount(target=v["bind"], source=source, type="bind" if source.startswith("/") else "volume",
                        read_only=v["mode"] == "ro") for source, v in self.volume_binds.items()]
        return mounts + [Mount(target=path, source=None, type="tmpfs", tmpfs_size=size, tmpfs_mode=0o1777)
                         for path, size in self.tmpfs.items()]

    async def create_object(self):
        if self.home_node:
            await self.check_home_node()
        await self.ensure_network()
        constraints = [f"node.labels.{self.node_label} == true"]
        if self.home_node:
            constraints.append(f"node.id == {self.home_node}")
        self.extra_placement_spec = {**self.extra_placement_spec, "constraints": constraints}
        self.extra_task_spec = {**self.extra_task_spec, "networks": [self.student_network]}
        return await super().create_object()

    async def docker(self, method, *args, **kwargs):
        if method == "create_service":  # docker-py's Resources cannot say it; the Engine API can
            kwargs["task_template"]["Resources"].setdefault("Limits", {})["Pids"] = self.pids_limit
        return await super().docker(method, *args, **kwargs)

    async def start_object(self):
        """Wait for the server's task to run, asking every ``task_poll_interval``: SwarmSpawner's own wait grows its
        pauses by half each time (1, 1.5, 2.25 ... 11 s), so a task running after 9 s was seen after 13, and the
        start held its place among those starting at once (QueuedStart) meanwhile. The hub's start_timeout
        bounds the wait."""
        while True:
            task = await self.get_task()
            if not task:
                raise RuntimeError(f"Service {self.service_name} not found")
            state = task["Status"]["State"].lower()
            if state not in NOT_RUNNING_YET:
                break
            await asyncio.sleep(self.task_poll_interval)
        if state != "running":
            raise RuntimeError(f"Service {self.service_name} not running: {task['Status']}")
        self.log.info("%s's task %s runs on node %s", self.user.name, task["ID"], task["NodeID"])
        if not self.home_node:  # the first server: its node holds the home from now on
            self.home_node = task["NodeID"]
            self.log.info("%s's home is on node %s", self.user.name, self.home_node)

    async def stop(self, now=False):
        await super().stop(now=now)
        await self.remove_network()
