"""Students' servers start in turn, each told its place, and are ready as soon as they answer.

``QueuedStart`` goes before the spawner class (``class QuotaHomeSpawner(QueuedStart, DockerSpawner)``):

- **In turn.** At most ``starts_at_once`` servers start at the same time (each start is seconds of the host's
  CPU: Jupyter importing); the others wait in arrival order, before ``Spawner.start``, so waiting does not count
  against ``start_timeout``. The spawn-pending page shows "N ahead of you" meanwhile, never an error (JupyterHub's
  own ``concurrent_spawn_limit`` answers 429 "Too many users" instead; hub_config.py turns it off).
- **Ready when it answers.** After the container starts, the hub waits for the server's first answer with
  growing pauses that reach 5 s (jupyterhub.utils.exponential_backoff): a server up after 3 s is seen at about
  4.5 s on average. ``start`` asks it itself every ``ready_poll_interval`` instead, and returns once it answers
  (or its container stopped), so the hub's first check finds it up.
"""
from __future__ import annotations

import asyncio
import time

from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Float, Integer
from traitlets.config import Configurable


class StartQueue:
    """Who is starting (at most ``limit`` at once) and who waits, in arrival order. One per hub process."""

    def __init__(self) -> None:
        self.starting: set[object] = set()
        self.waiting: list[tuple[object, asyncio.Future]] = []
        self.changed = asyncio.Event()  # set on every move, for the waiting ones' progress messages

    def ahead_of(self, who: object) -> int | None:
        """How many wait before ``who``; None once it is no longer waiting."""
        for place, (waiting, _) in enumerate(self.waiting):
            if waiting is who:
                return place
        return None

    async def enter(self, who: object, limit: int) -> None:
        """Return when ``who`` may start; a cancelled wait leaves the queue."""
        if len(self.starting) < limit and not self.waiting:
            self.starting.add(who)
            return
        turn = asyncio.get_running_loop().create_future()
        self.waiting.append((who, turn))
        self._moved()
        try:
            await turn
        except BaseException:
            if (who, turn) in self.waiting:
                self.waiting.remove((who, turn))
                self._moved()
            else:  # its turn came just as it was cancelled: pass the turn on
                self.leave(who, limit)
            raise

    def leave(self, who: object, limit: int) -> None:
        """``who`` has started (or failed to): the next ones in line may start."""
        self.starting.discard(who)
        while self.waiting and len(self.starting) < limit:
            nxt, turn = self.waiting.pop(0)
            self.starting.add(nxt)
            turn.set_result(None)
        self._moved()

    def _moved(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


QUEUE = StartQueue()


def waiting_message(ahead: int, limit: int) -> str:
    if ahead == 0:
        return f"Your server is next to start ({limit} start at once): it starts in a moment."
    students = "student" if ahead == 1 else "students"
    return f"Your server is waiting its turn to start: {ahead} {students} ahead of you ({limit} start at once)."


class QueuedStart(Configurable):
    """Put before a DockerSpawner class: starts in turn, with the place on the pending page; ready when up."""

    starts_at_once = Integer(4, min=1, config=True,
                             help="How many servers may start at the same time; the others wait their turn.")
    ready_poll_interval = Float(0.1, min=0.01, config=True,
                                help="Seconds between the spawner's own checks that a started server answers.")

    async def run_pre_spawn_hook(self):
        """The hub calls this just before ``start`` and outside its timeout: wait our turn here."""
        await QUEUE.enter(self, self.starts_at_once)
        try:
            return await _maybe_await(super().run_pre_spawn_hook())  # type: ignore[misc]
        except BaseException:
            QUEUE.leave(self, self.starts_at_once)
            raise

    async def start(self):
        try:
            if self not in QUEUE.starting:  # started without the hub's hook (a direct call): wait here
                await QUEUE.enter(self, self.starts_at_once)
            address = await super().start()  # type: ignore[misc]
            await self.wait_until_it_answers(address)
            return address
        finally:
            QUEUE.leave(self, self.starts_at_once)

    async def progress(self):
        arrival = time.monotonic() + 5  # the page may ask a moment before the hub has queued the start
        while self not in QUEUE.starting and QUEUE.ahead_of(self) is None and time.monotonic() < arrival:
            try:
                await asyncio.wait_for(QUEUE.changed.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
        ahead = QUEUE.ahead_of(self)
        while ahead is not None:
            changed = QUEUE.changed
            yield {"progress": 10, "message": waiting_message(ahead, self.starts_at_once)}
            await changed.wait()
            ahead = QUEUE.ahead_of(self)
        yield {"progress": 50, "message": "Starting your server: Jupyter is loading."}

    async def wait_until_it_answers(self, address) -> None:
        """Ask the new server until it answers like the hub's own check does (any status below 500).

        Gives up, leaving it to the hub's check and its error, after ``http_timeout`` or once the container
        stopped (``poll`` says so: then the hub reports the failure at once instead of after the timeout)."""
        url = address if isinstance(address, str) else f"http://{address[0]}:{int(address[1])}"
        url += self.server.base_url  # type: ignore[attr-defined]
        client = AsyncHTTPClient()
        deadline = time.monotonic() + self.http_timeout  # type: ignore[attr-defined]
        next_poll = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                response = await client.fetch(url, follow_redirects=False, raise_error=False,
                                              connect_timeout=2, request_timeout=5)
                if response.code < 500:
                    return
            except (OSError, HTTPClientError):  # refused, reset or timed out: not listening yet
                pass
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + 1.0
                if await self.poll() is not None:  # type: ignore[attr-defined]
                    return
            await asyncio.sleep(self.ready_poll_interval)


async def _maybe_await(value):
    return await value if asyncio.iscoroutine(value) or asyncio.isfuture(value) else value


# After the parts above, which tests/test_spawn_start.py uses without JupyterHub installed.
from dockerspawner import DockerSpawner  # noqa: E402


class QueuedDockerSpawner(QueuedStart, DockerSpawner):
    """DockerSpawner whose servers start in turn and are ready as soon as they answer (hub_config.py)."""
