"""Students' servers across the nodes of a Docker Swarm (the inventory's [nodes]), with the one host's limits.

``StudentSwarmSpawner`` is DockerSpawner's SwarmSpawner (one Swarm service per student's server) plus what the
classroom needs of it; hub_config.py picks it when the course config has ``spawner.swarm.enabled``.

- **Where.** A server runs on a node labelled ``<node_label>=true`` (the deploy's swarm role labels [nodes]).
- **Home.** Each student's home lives on one node. With a quota (``home_quota``, the deploy's default), it is a
  btrfs subvolume limited to it in ``homes_host_path`` on that node (the node's own students' file system, role
  student_disk), made before the student's first start by a one-off Swarm service running the student image's
  ``make-home.sh`` (``make_home``), as the one host's hub makes it in a throw-away container: Swarm places its
  task on one of the students' nodes, and where it ran is the home's node. Without a quota, the home is a Docker
  volume (hub_config's ``spawner.swarm.home_volume``) on the node of the student's first server. The hub keeps
  that node's id in the spawner's state (its database), and every later start is pinned there (placement
  constraint ``node.id == <it>``): a student never lands on an empty home. A start whose node is gone, down or
  drained fails at once with a message saying so; no other node has the files.
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
from docker.types import ContainerSpec, Mount, Resources, RestartPolicy, ServiceMode, TaskTemplate
from dockerspawner import SwarmSpawner
from tinytorch_homes import CAPABILITIES as HOME_CAPABILITIES  # what make-home.sh needs, and why
from tinytorch_start import QueuedStart
from traitlets import Bool, Dict, Float, Integer, List, Unicode

# A task in one of these states may still run (SwarmSpawner's own list: "rejected" is retried by Swarm).
NOT_RUNNING_YET = {"new", "assigned", "accepted", "starting", "pending", "preparing", "ready", "rejected"}
HOME_JOB_SECONDS = 120  # a home job not done by then has failed (no node can take it, a node that hangs)
JOB_ENDED = {"complete", "failed", "rejected", "shutdown", "orphaned"}  # a one-off task (restart condition none)


class StudentSwarmSpawner(QueuedStart, SwarmSpawner):
    """SwarmSpawner whose students are pinned to their home's node, each on a network of their own."""

    node_label = Unicode("tinytorch.students", config=True, help="Nodes with this label = true take servers.")
    attach = List(Unicode(), config=True, help="Containers (the hub, the proxy) joined to each student's network.")
    pids_limit = Integer(512, config=True, help="Processes per server.")
    tmpfs = Dict(config=True, help="Folder -> size (512m): in memory, within the memory limit.")
    home_node = Unicode("", help="The id of the node holding this student's home ('' until the first start).")
    task_poll_interval = Float(0.5, min=0.05, config=True, help="Seconds between checks that the server's task runs.")
    home_quota = Unicode("", config=True, help="What each home may hold, for btrfs (2G); '' for a volume, no quota.")
    homes_host_path = Unicode("", config=True, help="With a quota: the homes' folder on every node, <this>/<username>.")
    old_home_volume = Unicode("", config=True, help="With a quota: a home from before quotas, a volume, {username}.")
    home_made = Bool(False, help="True once this student's home is a subvolume with its quota (make_home).")

    @property
    def student_network(self) -> str:
        return f"{self.network_name}-{self.user.name}"

    # --- the home's node, kept in the hub's database with the spawner's state (never cleared on stop) ---------
    def get_state(self):
        state = super().get_state()
        if self.home_node:
            state["home_node"] = self.home_node
        if self.home_made:
            state["home_made"] = True
        return state

    def load_state(self, state):
        super().load_state(state)
        self.home_node = state.get("home_node", self.home_node)
        self.home_made = state.get("home_made", self.home_made)

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

    # --- the home with its quota, made by a one-off Swarm service on the home's node ----------------------------
    async def make_home(self) -> None:
        """Run make-home.sh as a one-task Swarm service: placed by Swarm on a students' node for a first start (that
        node holds the home from now on), or on the home's node for a student whose home is still a volume from
        before quotas (mounted at /old, copied in; the volume itself stays on the node until an admin removes it)."""
        name = f"{self.service_name}-home"
        constraints = [f"node.labels.{self.node_label} == true"]
        mounts = [Mount(target="/homes", source=self.homes_host_path, type="bind")]
        if self.home_node:
            constraints.append(f"node.id == {self.home_node}")
            if self.old_home_volume:
                mounts.append(Mount(target="/old", source=self.old_home_volume.format(username=self.escaped_name),
                                    type="volume", read_only=True))
        # The folder is the one the server binds, <homes>/{username}: DockerSpawner's escaped name (mary_k -> mary-5fk).
        spec = ContainerSpec(self.image, command=["make-home.sh", self.escaped_name, self.home_quota], user="root",
                             mounts=mounts, cap_drop=["ALL"], cap_add=HOME_CAPABILITIES)
        template = TaskTemplate(spec, resources=Resources(mem_limit=self.mem_limit),
                                placement={"Constraints": constraints}, restart_policy=RestartPolicy(condition="none"))
        await self.remove_service(name)  # a job left by a hub that stopped half-way
        # A service of one replica that is never restarted, not a "replicated-job": Swarm keeps a removed job's task
        # and container on the node (moby #42789, #44312); it removes this one's with the service.
        await self.docker("create_service", task_template=template, name=name, mode=ServiceMode("replicated", 1),
                          labels={"org.tinytorch.role": "make-home"})
        try:
            task = await self.finished_task(name)
            if task["Status"]["State"] != "complete":
                said = await self.docker("service_logs", name, stdout=True, stderr=True, tail=5)
                said = b"".join(said) if not isinstance(said, bytes) else said
                raise RuntimeError(f"could not make {self.user.name}'s home: {task['Status'].get('Err', '')} "
                                   f"{said.decode(errors='replace').strip()}".strip())
        finally:
            await self.remove_service(name)
        self.home_node, self.home_made = task["NodeID"], True
        self.log.info("made %s's home with a quota of %s on node %s", self.user.name, self.home_quota, self.home_node)

    async def remove_service(self, name: str) -> None:
        try:
            await self.docker("remove_service", name)
        except NotFound:
            pass

    async def finished_task(self, service: str) -> dict:
        """The one-off service's task once it has ended (or could not start), asking every task_poll_interval."""
        tasks = []
        for _ in range(int(HOME_JOB_SECONDS / self.task_poll_interval)):
            tasks = await self.docker("tasks", filters={"service": service})
            if tasks and tasks[0]["Status"]["State"] in JOB_ENDED:
                return tasks[0]
            await asyncio.sleep(self.task_poll_interval)
        status = tasks[0]["Status"] if tasks else {}
        raise RuntimeError(f"{self.user.name}'s home was not made within {HOME_JOB_SECONDS} s: its task is "
                           f"{status.get('State', 'not there')} {status.get('Err') or status.get('Message', '')}")

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
        if self.home_quota and not self.home_made:
            await self.make_home()
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
