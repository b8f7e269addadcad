"""Students' servers start in turn and are ready as soon as they answer (docker/hub/tinytorch_start.py).

QueuedStart runs here on a stand-in for JupyterHub's Spawner (what it uses of it: the pre-spawn hook, ``start``
returning the server's address, ``poll``, ``http_timeout``, ``server.base_url``), in the order the hub calls them;
the servers are real sockets on loopback. tests/test_deploy.py runs it in the hub on a deployed classroom."""
from __future__ import annotations

import asyncio
import sys
import time
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docker" / "hub"))
if "dockerspawner" not in sys.modules:  # only its last class needs DockerSpawner; JupyterHub is not installed here
    sys.modules["dockerspawner"] = types.SimpleNamespace(DockerSpawner=object)  # type: ignore[assignment]
import tinytorch_start  # noqa: E402
from tinytorch_start import QueuedStart  # noqa: E402


class StandIn:
    """What QueuedStart uses of jupyterhub.spawner.Spawner; ``go`` lets the test say when Docker has started it."""

    http_timeout = 30
    server = types.SimpleNamespace(base_url="/user/someone/")

    def run_pre_spawn_hook(self):
        self.hooked = True

    async def start(self):
        await self.go.wait()
        if self.fails:
            raise RuntimeError("the container could not be created")
        return self.address

    async def poll(self):
        return self.exit_status


class Spawner(QueuedStart, StandIn):
    def __init__(self, name: str, address=("127.0.0.1", 1), **traits) -> None:
        super().__init__(**traits)
        self.name, self.address, self.go, self.fails, self.exit_status = name, address, asyncio.Event(), False, None


async def answering_server(status: str = "302 Found") -> tuple[asyncio.AbstractServer, tuple[str, int]]:
    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[:2]


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def spawn(spawner: Spawner):
    """As jupyterhub.user.User.spawn: the pre-spawn hook, then start (under start_timeout, not needed here)."""
    await spawner.run_pre_spawn_hook()
    return await spawner.start()


@pytest.fixture(autouse=True)
def fresh_queue(monkeypatch):
    monkeypatch.setattr(tinytorch_start, "QUEUE", tinytorch_start.StartQueue())


def test_beyond_the_limit_servers_start_in_arrival_order_and_each_is_told_its_place():
    async def scenario():
        server, address = await answering_server()
        spawners = [Spawner(f"s{i}", address, starts_at_once=2) for i in range(1, 5)]
        tasks = []
        for spawner in spawners:
            tasks.append(asyncio.create_task(spawn(spawner)))
            await asyncio.sleep(0.01)
        messages: list[str] = []

        async def follow():
            async for event in spawners[3].progress():
                messages.append(event["message"])
        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        assert not any(getattr(s, "hooked", False) for s in spawners[2:]), "started beyond the limit"
        assert (tinytorch_start.QUEUE.ahead_of(spawners[2]), tinytorch_start.QUEUE.ahead_of(spawners[3])) == (0, 1)
        spawners[1].go.set()  # the second one is up first: the third may start, the fourth is next
        assert await tasks[1] == address
        await asyncio.sleep(0.05)
        assert spawners[2].hooked and not getattr(spawners[3], "hooked", False)
        for spawner, task in zip(spawners, tasks):
            spawner.go.set()
            assert await task == address
        await follower
        server.close()
        return messages

    messages = asyncio.run(scenario())
    assert messages == [
        "Your server is waiting its turn to start: 1 student ahead of you (2 start at once).",
        "Your server is next to start (2 start at once): it starts in a moment.",
        "Starting your server: Jupyter is loading.",
    ]


def test_a_failed_or_cancelled_start_gives_its_turn_to_the_next():
    async def scenario():
        server, address = await answering_server()
        first, second, third = (Spawner(name, address, starts_at_once=1) for name in ("a", "b", "c"))
        first.fails = True
        tasks = [asyncio.create_task(spawn(s)) for s in (first, second, third)]
        await asyncio.sleep(0.05)
        tasks[2].cancel()  # the third gives up while waiting (the hub stopped the spawn)
        await asyncio.sleep(0.01)
        assert tinytorch_start.QUEUE.ahead_of(third) is None and tinytorch_start.QUEUE.ahead_of(second) == 0
        first.go.set()
        with pytest.raises(RuntimeError, match="could not be created"):
            await tasks[0]
        second.go.set()
        assert await asyncio.wait_for(tasks[1], 5) == address
        assert not tinytorch_start.QUEUE.starting and not tinytorch_start.QUEUE.waiting
        server.close()

    asyncio.run(scenario())


def test_start_returns_as_soon_as_the_server_answers_not_before():
    async def scenario():
        port = free_port()
        spawner = Spawner("late", ("127.0.0.1", port))
        spawner.go.set()
        task = asyncio.create_task(spawn(spawner))
        await asyncio.sleep(1.0)
        assert not task.done(), "start returned before the server answered"
        async def error(reader, writer):  # a proxy error (5xx): not up yet either
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            writer.close()
        server = await asyncio.start_server(error, "127.0.0.1", port)
        await asyncio.sleep(0.5)
        assert not task.done(), "start took a 502 for an answer"
        server.close()
        await server.wait_closed()

        async def up(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 302 Found\r\nLocation: /lab\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            writer.close()
        server = await asyncio.start_server(up, "127.0.0.1", port)
        answered = time.monotonic()
        assert await asyncio.wait_for(task, 5) == ("127.0.0.1", port)
        server.close()
        return time.monotonic() - answered

    assert asyncio.run(scenario()) < 0.5  # the hub's own backoff would take up to 5 s


def test_a_server_whose_container_stopped_is_not_waited_for():
    async def scenario():
        spawner = Spawner("crashed", ("127.0.0.1", free_port()))
        spawner.go.set()
        spawner.exit_status = 1  # its container exited: nothing will ever answer
        started = time.monotonic()
        await asyncio.wait_for(spawn(spawner), 10)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 3  # not http_timeout (30 s)
