"""Each student's home: a btrfs subvolume with a quota, on the students' file system (deploy role student_disk).

A quota needs CAP_SYS_ADMIN, which the hub does not have. So before a student's first start the hub runs
``make-home.sh`` from the student image in a throw-away container that has that capability and no network,
and sees only the homes' folder (and, read-only, the student's Docker volume from a deploy before quotas,
removed once its files are in the new home). The hub sees the homes read-only (``homes_hub_path``): a home
already made is a subvolume, whose root is inode 256, and costs no container.
"""
from __future__ import annotations

import asyncio
import os

import docker
from docker.errors import ContainerError, NotFound
from dockerspawner import DockerSpawner
from tinytorch_start import QueuedStart
from traitlets import Unicode

SUBVOLUME_ROOT_INODE = 256  # btrfs gives every subvolume's root directory this inode number
# What make-home.sh needs: a subvolume and its quota (SYS_ADMIN); copying an old home with its owners and modes.
CAPABILITIES = ["SYS_ADMIN", "CHOWN", "DAC_OVERRIDE", "FOWNER"]


class QuotaHomeSpawner(QueuedStart, DockerSpawner):
    """DockerSpawner whose students' homes are btrfs subvolumes with a quota (hub_config.py sets it up); its
    servers start in turn and are ready as soon as they answer (QueuedStart: docker/hub/tinytorch_start.py)."""

    homes_host_path = Unicode(config=True, help="The homes' folder on the host: <this>/<username>.")
    homes_hub_path = Unicode(config=True, help="The same folder in the hub container, read-only.")
    home_quota = Unicode(config=True, help="What each home may hold, for btrfs (2G).")
    old_home_volume = Unicode("", config=True, help="A home from before quotas: a Docker volume, {username} (escaped).")

    async def start(self):
        # The folder DockerSpawner binds: <homes_host_path>/{username}, where {username} is the escaped name
        # (mary_k -> mary-5fk). Making the raw name's folder instead left such a student in a folder Docker made
        # without a quota, and handed a plain folder named like another's escaped name to that other student.
        name = self.escaped_name
        try:
            made = os.stat(os.path.join(self.homes_hub_path, name)).st_ino == SUBVOLUME_ROOT_INODE
        except FileNotFoundError:
            made = False
        if not made:
            await asyncio.to_thread(self.make_home, name)
        return await super().start()

    def make_home(self, name: str) -> None:
        client = docker.from_env()
        volumes = {self.homes_host_path: {"bind": "/homes", "mode": "rw"}}
        old = self.old_home_volume.format(username=name) if self.old_home_volume else None
        try:
            if old:
                client.volumes.get(old)
                volumes[old] = {"bind": "/old", "mode": "ro"}
        except NotFound:
            old = None
        try:
            client.containers.run(self.image, [name, self.home_quota], entrypoint=["make-home.sh"], user="root",
                                  network_mode="none", cap_drop=["ALL"], cap_add=CAPABILITIES,
                                  security_opt=["no-new-privileges"], volumes=volumes, remove=True,
                                  labels={"org.tinytorch.role": "make-home"})
        except ContainerError as error:
            stderr = error.stderr.decode(errors="replace").strip() if error.stderr else ""
            raise RuntimeError(f"could not make {name}'s home: {stderr or error}") from None
        if old:
            client.volumes.get(old).remove()
        self.log.info("made %s's home with a quota of %s%s", name, self.home_quota, f" from {old}" if old else "")
