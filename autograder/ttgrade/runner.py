"""Run one probe in a fresh student process, with limits; the grader process's side of ttgrade.child."""
from __future__ import annotations

import ctypes
import os
import pickle
import re
import resource
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from . import wire
from .protocol import ProbeLimits

PROBE_MARK = "__ttgrade_probe__"  # set by @probe on the functions whose source is shipped to the student's process
MAX_RESPONSE = 256 * 2**20   # bytes a probe may send back
GRACE = 2.0                  # seconds a probe's process gets to exit after answering


@dataclass
class ProbeOutcome:
    status: str                  # "ok", or what went wrong: "import", "error", "timeout", "crash", "exit", "bad"
    message: str = ""
    value: object = None
    seconds: float = 0.0
    tampering: list = field(default_factory=list)
    rss_growth: int = 0          # bytes: how much the probe's processes grew (resident, sampled from outside)
    marked: bool = False         #   ... after the measured operation began (peak_bytes says when)


@dataclass
class FileContext:
    stack: str                   # the package folder the student's process imports tinytorch from
    probes: str                  # the source of the file's @probe functions
    stack_problem: str = ""      # why the stack is not the student's code (no notebook, no export...)
    secret: str = ""             # the test file's source, which no message may carry into the feedback


MAX_MESSAGE = 500   # characters of a failure message from the student's process that reach the feedback
MIN_FRAGMENT = 10   # characters (white space aside) of the test's code or a string input that a message may not repeat
MAX_SCANNED = 2**20  # array inputs larger than this (datasets, public) are not looked for in messages
MAX_TEXT = 2**16     # ... nor string inputs longer than this
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class Secrets:
    """What no message from the student's process may carry into the feedback: the test file's code (a submission can
    read its caller's source from the stack) and the probe's arguments, the hidden inputs (its own arguments hold them)."""

    def __init__(self, source: str, args: tuple = (), public: str = ""):
        self.public = public  # what the student's own files hold (white space removed): no secret, though in the test
        texts: list[str] = [source]
        numbers: list[np.ndarray] = []
        gather(args, texts, numbers)
        squeezed = ["".join(text.split()) for text in texts]
        self.fragments = {text[i:i + MIN_FRAGMENT] for text in squeezed for i in range(len(text) - MIN_FRAGMENT + 1)}
        self.numbers = np.unique(np.concatenate(numbers)) if numbers else np.zeros(0)

    def hide(self, message: str) -> str:
        """``message`` with every piece of the test's code (that the student's own files do not hold: ``requires_grad``
        is no secret) replaced by ``[test code]`` and every number that is (at the precision it is written with, two
        significant digits or more) a value of an input by ``[test input]``."""
        kept = [i for i, c in enumerate(message) if not c.isspace()]
        squeezed = "".join(message[i] for i in kept)
        spans: list[list[int]] = []
        for j in range(len(squeezed) - MIN_FRAGMENT + 1):
            window = squeezed[j:j + MIN_FRAGMENT]
            if window in self.fragments and window not in self.public:
                start, end = kept[j], kept[j + MIN_FRAGMENT - 1] + 1
                if spans and start <= spans[-1][1]:
                    spans[-1][1] = end
                else:
                    spans.append([start, end])
        for start, end in reversed(spans):
            message = message[:start] + "[test code]" + message[end:]
        return NUMBER.sub(lambda m: "[test input]" if self.is_input(m.group()) else m.group(), message)

    def is_input(self, token: str) -> bool:
        mantissa, _, exponent = token.lower().lstrip("+-").partition("e")
        whole, _, decimals = mantissa.partition(".")
        significant = (whole + decimals).lstrip("0")
        if len(significant) < 2 or ("." not in mantissa and not exponent and len(whole) < 3):
            return False  # "0.5", "(3, 4)", "line 12": too common to mean anything
        value = float(token)
        tolerance = 0.51 * 10.0 ** (int(exponent or 0) - len(decimals)) + abs(value) * 1e-7  # float32 printed as float64
        index = int(np.searchsorted(self.numbers, value - tolerance))
        return index < len(self.numbers) and self.numbers[index] <= value + tolerance


def gather(value, texts: list, numbers: list) -> None:
    """The strings and numbers an argument holds (arrays, tuples, lists, dicts of them)."""
    if isinstance(value, str):
        if len(value) <= MAX_TEXT:
            texts.append(value)
    elif isinstance(value, (bool, np.bool_)) or value is None:
        return
    elif isinstance(value, (int, float, np.number)):
        numbers.append(np.array([float(value)]))
    elif isinstance(value, np.ndarray):
        if value.dtype.kind in "iuf" and value.size <= MAX_SCANNED:
            numbers.append(value.astype(np.float64).ravel())
        elif value.dtype.kind == "U" and value.size <= 1000:
            texts.extend(str(v) for v in value.ravel())
    elif isinstance(value, (tuple, list)):
        for item in value:
            gather(item, texts, numbers)
    elif isinstance(value, dict):
        for key, item in value.items():
            gather(key, texts, numbers)
            gather(item, texts, numbers)


def scrub(message: str, secrets: Secrets | None) -> str:
    """A message from the student's process, as the feedback may show it: no piece of the test's code or of its inputs
    (Secrets.hide), at most MAX_MESSAGE characters."""
    if secrets is not None:
        message = secrets.hide(message)
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "..."


class Context:
    """The state of one grading run in the grader process: limits, stacks, notes of the running test."""

    def __init__(self, limits: ProbeLimits, workdir: str):
        self.limits = limits
        self.workdir = workdir
        self.files: dict[str, FileContext] = {}
        self.datasets: dict = {}
        self.current: str | None = None
        self.notes: dict[str, list[str]] = {}
        self.stacks: dict[str, dict[str, str]] = {}  # folder -> the package files written there
        self.keep: set[str] = set()                  # what in /tmp belongs to the grader
        self.reference_files: dict[str, str] = {}    # the reference tinytorch, for reference=True runs
        self.spent = 0.0                             # seconds the submission's probes took so far (the budget)
        self.public: str | None = None               # the stacks' text, white space removed (Secrets)

    def restore(self) -> None:
        """After a probe: remove whatever the student's processes left in /tmp, /dev/shm, POSIX message queues and
        System V IPC (the next probe gets them fresh; the grader's own folders get their modes back first, so a
        ``chmod 555`` keeps nothing) and rewrite every stack as built."""
        for folder in sorted(self.keep) + [self.workdir]:
            try:
                os.chmod(folder, 0o755)
            except OSError:
                pass
        remove_ipc()
        for top in [TMP, SHM, MQUEUE] + sorted(self.keep):
            for entry in os.listdir(top) if os.path.isdir(top) else []:
                path = os.path.join(top, entry)
                if path not in self.keep and path not in self.stacks and path != self.workdir:
                    remove(path)
        for entry in os.listdir(self.workdir):
            remove(os.path.join(self.workdir, entry))
        for folder, files in self.stacks.items():
            remove(folder)
            write_files(folder, files)

    def secrets(self, fn, args: tuple) -> Secrets | None:
        """What messages about probe ``fn`` run with ``args`` may not show (None: a visible test's, nothing secret)."""
        context = self.files[fn.__code__.co_filename]
        if not context.secret:
            return None
        if self.public is None:  # the stacks are built before the first hidden test runs
            self.public = "".join("".join(text.split()) for files in self.stacks.values() for text in files.values())
        return Secrets(context.secret, args, self.public)

    # -- notes and datasets -------------------------------------------------------------------------
    def note(self, text: str) -> None:
        self.notes.setdefault(self.current or "", []).append(text)

    def dataset(self, name: str):
        if name not in self.datasets:
            raise RuntimeError(f"the grader was not given the dataset {name!r} (declare it: datasets = [{name!r}])")
        return self.datasets[name]

    # -- running a probe ----------------------------------------------------------------------------
    def run(self, fn, args: tuple, timeout: float | None = None, memory_mb: int | None = None,
            sample: bool = False, reference: bool = False) -> ProbeOutcome:
        """Run probe ``fn`` in a fresh process on the student's tinytorch (or, ``reference=True``, on a
        reference tinytorch written to /tmp only while no student process exists, and deleted after)."""
        filename = fn.__code__.co_filename
        context = self.files.get(filename)
        if context is None or not getattr(fn, PROBE_MARK, False):
            raise RuntimeError(f"{fn.__name__} is not a @probe of a hidden test file")
        budgeted = timeout is None and not reference  # a test's own long timeout (a milestone) is its own budget
        timeout = float(timeout or self.limits["probe_timeout"])
        if budgeted:
            remaining = self.limits["probe_budget"] - self.spent
            if remaining <= 0:
                return ProbeOutcome("timeout", f"not run: the tests of this submission used up the "
                                               f"{self.limits['probe_budget']:g} s they may take together")
            timeout = min(timeout, remaining)
        memory_mb = int(memory_mb or self.limits["probe_memory_mb"])
        stack = context.stack
        if reference:
            stack = os.path.join(self.workdir, "reference-stack")
            write_files(stack, self.reference_files)
        request = {"stack": stack, "probes": context.probes, "probe": fn.__name__, "args": args}
        home = tempfile.mkdtemp(prefix="student-", dir=self.workdir)  # a fresh, empty directory per probe
        os.chmod(home, 0o755)
        try:
            outcome = run_child(request, timeout, memory_mb, home, sample)
        finally:
            remove(home)
            self.restore()  # also deletes the reference stack
        if budgeted:
            self.spent += outcome.seconds
        if outcome.message or outcome.tampering:  # the student's words: they may quote the test's code and inputs
            secrets = self.secrets(fn, args)
            outcome.message = scrub(outcome.message, secrets)
            outcome.tampering = [scrub(text, secrets) for text in outcome.tampering]
        if outcome.status == "import" and context.stack_problem:
            outcome.message = f"{context.stack_problem}; {outcome.message}"
        elif outcome.status != "ok" and context.stack_problem:
            outcome.message = f"{outcome.message} ({context.stack_problem})"
        return outcome


CONTEXT: Context  # set by ttgrade.parent
TMP = "/tmp"
SHM = "/dev/shm"  # noqa: S108  (the container's shared-memory tmpfs: writable by the student's processes)
MQUEUE = "/dev/mqueue"  # POSIX message queues, which outlive their processes too
SYSV_IPC = {"shm": "shmctl", "msg": "msgctl", "sem": "semctl"}  # /proc/sysvipc/<kind> lists them; <call> removes one
IPC_RMID = 0


def remove_ipc() -> None:
    """Remove every System V shared-memory segment, message queue and semaphore set (they outlive the processes that
    made them, like files in /dev/shm). Only as the container's init: elsewhere they may be someone else's."""
    if os.getpid() != 1:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for kind, call in SYSV_IPC.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                ids = [int(line.split()[1]) for line in f.read().splitlines()[1:] if line.strip()]
        except (OSError, ValueError, IndexError):
            continue
        for ipc_id in ids:
            if kind == "sem":
                libc.semctl(ipc_id, 0, IPC_RMID, 0)
            else:
                getattr(libc, call)(ipc_id, IPC_RMID, None)


def remove(path: str) -> None:
    """Delete a file, link or folder tree the student's code may have made read-only or deep (same uid: chmod
    works), walking it without recursion: first every folder made writable and emptied of its files, then the
    folders themselves, deepest first."""
    if os.path.islink(path) or not os.path.isdir(path):
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    pending, folders = [path], []
    while pending:
        folder = pending.pop()
        folders.append(folder)
        try:
            os.chmod(folder, 0o700)
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            else:
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def write_files(folder: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def _limit_child(memory_mb: int, file_mb: int):
    def apply() -> None:  # runs in the child between fork and exec: only async-signal-safe-ish calls
        address_space = (memory_mb + 512) * 2**20  # virtual: NumPy and the interpreter map more than they use
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb * 2**20, file_mb * 2**20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:  # the kernel's OOM killer then picks the student's process, never the grader
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
    return apply


def kill_everything_else(child: subprocess.Popen) -> None:
    """Kill the probe's process and everything it started (forks, daemons), then reap them."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()
    if os.getpid() == 1:  # the container's init: every other process in the container is the submission's
        for _ in range(100):
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                while os.waitpid(-1, os.WNOHANG) != (0, 0):
                    pass
            except ChildProcessError:
                break
            time.sleep(0.01)


def resident_bytes(child_pid: int) -> int:
    """Resident memory of the probe's processes: in the container (we are pid 1) every process but us."""
    pids = [p for p in os.listdir("/proc") if p.isdigit() and p != "1"] if os.getpid() == 1 else [str(child_pid)]
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            pass
    return total


PAGE = os.sysconf("SC_PAGE_SIZE")


def start_child(request: dict, memory_mb: int, workdir: str) -> tuple[subprocess.Popen, int]:
    """Start ``ttgrade.child`` with its limits and send it the request; return it and the pipe it answers on."""
    read_fd, write_fd = os.pipe()
    env = {"PATH": "/opt/venv/bin:/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    child = subprocess.Popen([sys.executable, "-I", "-m", "ttgrade.child", str(write_fd)], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_fd,),
                             cwd=workdir, env=env, start_new_session=True,
                             preexec_fn=_limit_child(memory_mb, file_mb=64))
    os.close(write_fd)
    assert child.stdin is not None  # stdin=PIPE
    try:
        child.stdin.write(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
        child.stdin.close()
    except BrokenPipeError:
        pass
    return child, read_fd


@dataclass
class Response:
    """What came back on the pipe: the bytes, whether a whole frame arrived, and the memory samples."""
    data: bytearray = field(default_factory=bytearray)
    complete: bool = False
    timed_out: bool = False
    marked_at: int | None = None   # resident bytes when the measured operation began
    rss_growth: int = 0            # ... and its growth since

    def frame_size(self) -> int | None:
        return struct.unpack(">Q", self.data[:8])[0] if len(self.data) >= 8 else None


def read_response(child: subprocess.Popen, read_fd: int, deadline: float, sample: bool) -> Response:
    """Read the child's answer until a whole frame, the deadline, or its end (sampling memory when ``sample``)."""
    response = Response()
    selector = selectors.DefaultSelector()
    selector.register(read_fd, selectors.EVENT_READ)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            response.timed_out = True
            break
        if sample and response.marked_at is not None:
            response.rss_growth = max(response.rss_growth, resident_bytes(child.pid) - response.marked_at)
        if not selector.select(min(remaining, 0.002 if sample else 0.5)):
            if child.poll() is not None and not selector.select(0):
                break  # exited without closing every copy of the pipe (a forked child holds it)
            continue
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            break
        response.data += chunk
        while response.frame_size() == 0:  # an empty frame: "measuring starts now"
            del response.data[:8]
            if sample and response.marked_at is None:
                response.marked_at = resident_bytes(child.pid)
        size = response.frame_size()
        if size is not None and (size > MAX_RESPONSE or len(response.data) >= 8 + size):
            response.complete = size <= MAX_RESPONSE
            break
    selector.close()
    return response


def outcome_of(response: Response, code: int | None, timeout: float, memory_mb: int, seconds: float) -> ProbeOutcome:
    """What the probe's run means for the test: its value, or what went wrong in words a student understands."""
    if response.timed_out:
        return ProbeOutcome("timeout", f"did not finish within the time limit of {timeout:g} s (an endless loop?)",
                            seconds=seconds)
    if not response.complete:
        if (response.frame_size() or 0) > MAX_RESPONSE:
            return ProbeOutcome("bad", f"sent back more than {MAX_RESPONSE // 2**20} MB", seconds=seconds)
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            why = {"SIGKILL": f" (most likely out of memory: the limit is {memory_mb} MB)",
                   "SIGXFSZ": " (it wrote a file larger than 64 MB)"}.get(name, "")
            return ProbeOutcome("crash", f"the process running your code was killed by {name}{why}", seconds=seconds)
        return ProbeOutcome("exit", f"your code ended the process (exit status {code}) before the test finished "
                                    "(sys.exit / os._exit / a crash)", seconds=seconds)
    try:
        envelope = wire.decode(bytes(response.data[8:8 + (response.frame_size() or 0)]))
    except wire.WireError as error:
        return ProbeOutcome("bad", f"the result sent back is unusable: {error}", seconds=seconds)
    if not isinstance(envelope, dict) or envelope.get("status") not in ("ok", "error", "import"):
        return ProbeOutcome("bad", "the result sent back is unusable", seconds=seconds)
    status = envelope["status"]
    if status == "import":
        return ProbeOutcome("import", f"your tinytorch does not import: {envelope.get('message', '')}", seconds=seconds)
    if status == "error":
        return ProbeOutcome("error", f"your code raised {envelope.get('message', '')}", seconds=seconds)
    tampering = envelope.get("tampering")
    return ProbeOutcome("ok", value=envelope.get("value"), seconds=seconds, rss_growth=response.rss_growth,
                        marked=response.marked_at is not None,
                        tampering=[str(t) for t in tampering] if isinstance(tampering, list) else ["unreadable report"])


def run_child(request: dict, timeout: float, memory_mb: int, workdir: str, sample: bool = False) -> ProbeOutcome:
    """One probe in a fresh ``ttgrade.child`` process: start it, read its answer, kill whatever it left."""
    started = time.monotonic()
    child, read_fd = start_child(request, memory_mb, workdir)
    response = read_response(child, read_fd, started + timeout, sample)
    seconds = time.monotonic() - started
    os.close(read_fd)
    if response.complete:
        try:
            child.wait(GRACE)
        except subprocess.TimeoutExpired:
            pass
    kill_everything_else(child)
    return outcome_of(response, child.returncode, timeout, memory_mb, seconds)
