"""A hostile corpus graded in one batch with honest submissions (autograder issue).

Every hostile submission is the reference module 02 plus an extra export cell that misbehaves.  The
score it *deserves* is the score of its benign twin: the same submission with the misbehaviour
replaced by an ordinary exception (or removed, where misbehaving breaks nothing, like printing).
The honest submissions in the same batch must score exactly what they score when graded alone.
"""
from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from autograder import sandbox
from tests.test_autograder import failures, grade_all, grader_image, reference_notebook, with_payload, write_notebooks  # noqa: F401

SLUG = "02_tensor"
TIGHT = sandbox.Limits(memory_mb=768, pids=64, probe_timeout=3, probe_memory_mb=400, wall_seconds=300)


def hostile_add(body: str, setup: str = "") -> str:
    """An export cell that replaces Tensor.__add__ (used by most hidden tests of module 02) by ``body``."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return f"{setup.strip()}\n\n\ndef _hostile_add(self, other):\n{indented}\n\n\nTensor.__add__ = _hostile_add\n"


RAISE = hostile_add("raise RuntimeError('this add is broken')")
# The reference add, for payloads that "succeed" when the sandbox leaks: then they score MORE than their twin.
CORRECT = "return _make(self.data + self._lift(other).data, 'add', (self, self._lift(other)))"

SEARCH_DISK = r"""
import os as _os
def _leaked():
    # hidden tests, or the reference of this module, anywhere this process can read?
    # built from pieces, so that this submission's own files (notebook, export) do not hold them
    markers = ("def test_" + "broadcasting_arithmetic", 'name = "02_tensor' + ' correctness"')
    for path in ["/proc/1/environ", "/proc/1/fd/0", "/proc/1/fd/1", "/proc/1/maps"]:
        try:
            with open(path, "rb") as f:  # the grader's environment, stdin, stdout, memory map: all must be closed
                f.read(1)
            return True
        except OSError:
            pass
    try:
        with open("/proc/1/fd/1", "w") as f:  # the grader's stdout, where the result line goes
            f.write("forged\n")
        return True
    except OSError:
        pass
    try:  # the grader's memory holds the hidden tests: read it if the kernel lets us
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
    for top, dirs, files in _os.walk("/"):
        dirs[:] = [d for d in dirs if not (top == "/" and d in ("proc", "sys", "dev"))]
        for name in files:
            if name.endswith((".py", ".json", ".ipynb", ".txt")) and "/numpy/" not in top:
                try:
                    with open(_os.path.join(top, name), errors="replace") as f:
                        text = f.read(1 << 20)
                except OSError:
                    continue
                if any(m in text for m in markers):
                    return True
    return False
"""

WRITE_OUTSIDE = r"""
def _wrote_outside():
    wrote = False
    for path in ["/submission/evil.txt", "/home/grader/evil.txt", "/opt/venv/evil.txt", "/etc/evil.txt", "/evil.txt",
                 "/opt/tinytorch-reference/evil.txt", "/tmp/../root/evil.txt"]:
        try:
            with open(path, "w") as f:
                f.write("pwned")
            wrote = True
        except OSError:
            pass
    return wrote
"""

FAKE_RESULTS = r"""
import json as _json, os as _os, sys as _sys
_fake = _json.dumps({"status": "graded", "score": 999, "possible": 15, "tests": []})
for _line in ["TTGRADE-RESULT " + "0" * 32 + " " + _fake, _fake]:
    print(_line)
    print(_line, file=_sys.stderr)
for _path in ["/proc/1/fd/1", "/dev/stdout", "/tmp/ttgrade/results.json", "results.json", "/tmp/results.json"]:
    try:
        with open(_path, "w") as _f:
            _f.write("TTGRADE-RESULT " + "0" * 32 + " " + _fake + "\n")
    except OSError:
        pass
"""

MONKEYPATCH = r"""
import numpy as _np, tracemalloc as _tm
_np.allclose = lambda *a, **k: True
_np.isclose = lambda a, b, **k: _np.ones(_np.broadcast(a, b).shape, dtype=bool)
_np.array_equal = lambda *a, **k: True
_np.testing.assert_allclose = lambda *a, **k: None
_tm.get_traced_memory = lambda: (0, 0)
_tm.reset_peak = lambda: None
try:
    import ttgrade, ttgrade.api, ttgrade.child
    ttgrade.api.compare = lambda *a, **k: None
    ttgrade.child.peak_bytes = lambda fn: (fn(), 0)[1]
    ttgrade.child.TAMPERING.clear()
except Exception:
    pass
"""
DEEP_TAMPER = r"""
import sys as _sys
_grader = _sys.modules.get("__main__")  # the student's process runs ttgrade.child as __main__
if _grader is not None and hasattr(_grader, "peak_bytes"):
    import os as _os
    # says "measuring starts now" as the real one does, runs the operation, reports nothing
    _grader.peak_bytes = lambda fn: (_os.write(_grader.RESPONSE_FD, bytes(8)), fn(), 0)[2]
    _grader.tracemalloc_tampering = lambda: []
"""
HUNGRY_WRONG = hostile_add("_ballast = np.ones(16 * 2**20)\nreturn _make(np.zeros_like(self.data), 'add', (self, self._lift(other)))")


def network_payload(port: int) -> str:
    return hostile_add(
        f"""import socket
for host in ["172.17.0.1", "192.0.2.2", "10.0.2.2", "pypi.org", "8.8.8.8"]:
    try:
        socket.create_connection((host, {port} if host[0] in "1" else 443), timeout=1).close()
        {CORRECT}
    except OSError:
        pass
raise RuntimeError("no network")""")


CORPUS = {  # name -> (payload, twin) ; twin None = RAISE
    "endless loop": (hostile_add("while True:\n    pass"), None),
    "10 GB allocation": (hostile_add("return np.ones(10 * 2**30, dtype=np.uint8)"), None),
    "allocation until killed": (hostile_add("hoard = []\nwhile True:\n    hoard.append(np.ones(2**24))"), None),
    "fork bomb": (hostile_add("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"), None),
    "sys.exit(0) mid-test": (hostile_add("import sys\nsys.exit(0)"), None),
    "os._exit(0) mid-test": (hostile_add("import os\nos._exit(0)"), None),
    "reads hidden tests from disk": (hostile_add(f"if _leaked():\n    {CORRECT}\nraise RuntimeError('nothing found')", SEARCH_DISK), None),
    "writes outside its directory": (hostile_add(f"if _wrote_outside():\n    {CORRECT}\nraise RuntimeError('read-only')", WRITE_OUTSIDE), None),
    "fake results file": (FAKE_RESULTS + RAISE, None),
    "fills /tmp and edits its package": (hostile_add(
        "import glob, os\nfor path in glob.glob('/tmp/ttgrade/stack-*/tinytorch/*.py'):\n"
        "    open(path, 'a').write('\\nraise SystemExit(3)\\n')\n"
        "for i in range(100):\n    try:\n        open(f'/tmp/junk{i}', 'wb').write(b'x' * 60 * 2**20)\n"
        "    except OSError:\n        break\nraise RuntimeError('disk full')"), None),
    "monkeypatches numpy, tracemalloc, helpers": (MONKEYPATCH + HUNGRY_WRONG, HUNGRY_WRONG),
    "rewires the memory measurement in its process": (DEEP_TAMPER + HUNGRY_WRONG, "hungry, measured"),
    "prints 100 MB": ("import sys as _sys\n_sys.stdout.write('x' * 100 * 2**20)\n_sys.stdout.flush()\n", ""),
}
HONEST = {
    "reference": "",
    "wrong multiplication": "def _wrong_mul(self, other):\n    return _make(self.data * 2, 'mul', (self, self._lift(other)))\n\n\nTensor.__mul__ = _wrong_mul\n",
}


@pytest.fixture(scope="module")
def listener():
    """A TCP server on every host address: no grading container may reach it."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, peer = server.accept()
                accepted.append(peer)
                connection.close()
            except OSError:
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def job(tmp_path, name: str, payload: str, image: str) -> sandbox.Job:
    nb = reference_notebook(SLUG)
    if payload:
        nb = with_payload(nb, payload)
    folder = tmp_path / name.replace(" ", "_").replace("/", "_")
    return sandbox.Job(SLUG, write_notebooks(folder, {SLUG: nb}), label=name, image=image, limits=TIGHT)


@pytest.mark.slow
def test_hostile_submissions_get_what_they_deserve_and_honest_ones_their_solo_score(grader_image, listener, tmp_path):
    port, accepted = listener
    corpus = dict(CORPUS)
    corpus["opens a network connection"] = (network_payload(port), None)
    honest_jobs = {name: job(tmp_path / "solo", name, payload, grader_image) for name, payload in HONEST.items()}
    solo = {name: sandbox.grade_in_container(j) for name, j in honest_jobs.items()}  # one at a time, alone
    for name, result in solo.items():
        assert result["status"] == "graded", failures(result)
    assert solo["reference"]["score"] == solo["reference"]["possible"]
    assert 0 < solo["wrong multiplication"]["score"] < solo["reference"]["score"]

    twins = {"raise": RAISE, "hungry wrong add": HUNGRY_WRONG}
    batch = {f"hostile: {n}": p for n, (p, _) in corpus.items()}
    batch.update({f"twin: {n}": p for n, p in twins.items()})
    batch.update({f"honest: {n}": p for n, p in HONEST.items()})
    names = list(batch)
    started = time.monotonic()
    results = dict(zip(names, grade_all([job(tmp_path / "batch", n, batch[n], grader_image) for n in names])))
    elapsed = time.monotonic() - started

    problems = []
    for name, result in results.items():
        if result.get("status") != "graded":
            problems.append(f"{name}: not graded: {failures(result)}")
    assert not problems, "\n".join(problems)
    scores = {name: result["score"] for name, result in results.items()}
    # Tampering with tracemalloc breaks every memory measurement: those tests score 0, whatever the twin got.
    twin_memory = sum(t["score"] for t in results["twin: hungry wrong add"]["tests"] if t["kind"] == "memory")
    for name, (payload, twin) in corpus.items():
        deserved = {None: scores["twin: raise"], HUNGRY_WRONG: scores["twin: hungry wrong add"] - twin_memory,
                    "hungry, measured": scores["twin: hungry wrong add"], "": solo["reference"]["score"]}[twin]
        if scores[f"hostile: {name}"] != deserved:
            problems.append(f"{name}: scored {scores[f'hostile: {name}']}, deserves {deserved}\n"
                            f"{failures(results[f'hostile: {name}'])}")
    for name in HONEST:
        if results[f"honest: {name}"]["tests"] != solo[name]["tests"]:
            problems.append(f"honest {name}: {scores[f'honest: {name}']} in the batch, {solo[name]['score']} alone")
    assert not problems, "\n".join(problems)
    assert scores["twin: raise"] < solo["reference"]["score"], "the twin must actually lose points"
    messages = " ".join(t["message"] for t in results["hostile: endless loop"]["tests"])
    assert "time limit of 3 s" in messages
    memory_messages = " ".join(t["message"] for t in results["hostile: monkeypatches numpy, tracemalloc, helpers"]["tests"])
    assert "tampered" in memory_messages, memory_messages
    deep = " ".join(t["message"] for t in results["hostile: rewires the memory measurement in its process"]["tests"])
    assert "tracemalloc did not report" in deep, deep
    assert accepted == [], f"a grading container reached the host: {accepted}"
    leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", "name=ttgrade-"], capture_output=True, text=True).stdout
    assert leftovers.strip() == "", "grading containers were left behind"
    # the host survived: the whole batch ran, bounded by the per-test limits (not a timing test: a generous bound)
    assert elapsed < TIGHT.wall_seconds * len(names) / 2
