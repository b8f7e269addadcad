"""A hostile corpus graded in one batch with honest submissions (autograder issue).

Every hostile submission is the reference module 02 plus an extra export cell that misbehaves.  The
score it *deserves* is the score of its benign twin: the same submission with the misbehaviour
replaced by an ordinary exception (or removed, where misbehaving breaks nothing, like printing).
The honest submissions in the same batch must score exactly what they score when graded alone.
"""
from __future__ import annotations

import ast
import dataclasses
import io
import os
import socket
import subprocess
import threading
import time
import tokenize

import nbformat
import numpy as np
import pytest

from autograder import containers, hidden
from autograder.results import read_results
from course.build.leaks import find_leaks
from tests.conftest import ROOT
from tests.test_autograder import (autograder, canvas_zip, course_dir, failures, grade_all, grader_image,  # noqa: F401
                                   notebook_test_points, reference_notebook, with_payload, write_notebooks)

SLUG = "02_tensor"
BATCH = f"hostile-corpus-{os.getpid()}"  # this module's grading containers (others may run on the host)
TIGHT = containers.Limits(memory_mb=768, pids=64, probe_timeout=3, probe_memory_mb=400, wall_seconds=300)


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
    markers = ('test_case(name="test_' + 'broadcasting_arithmetic"', 'name = "02_tensor' + ' correctness"')
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
REWRITE_VISIBLE = r"""
import glob as _glob, re as _re, sys as _sys, types as _types
# its visible tests, wherever they are on disk: every test body becomes `pass`
for _path in _glob.glob("/tmp/**/test_*.py", recursive=True) + _glob.glob("/submission/**/test_*.py", recursive=True):
    try:
        with open(_path) as _f:
            _text = _f.read()
        with open(_path, "w") as _f:
            _f.write(_re.sub(r"^    \S.*$", "    pass", _text, flags=_re.M))
    except OSError:
        pass
# ... and, should the tests be imported by name, a stand-in whose tests all pass
_fake = _types.ModuleType("tinytorch.checks.test_02_tensor")
_fake.__getattr__ = lambda name: (lambda: None)
_sys.modules["tinytorch.checks.test_02_tensor"] = _fake
"""
PATCH_BUILTINS = r"""
import builtins as _builtins
_real_getattr = _builtins.getattr
# every test function looked up by name becomes a no-op that "passes"
_builtins.getattr = lambda obj, name, *default: (lambda *a, **k: None) if str(name).startswith("test_") \
    else _real_getattr(obj, name, *default)
"""
DEEP_FOLDERS = r"""
import os as _os
_here = "/tmp/deep"
for _ in range(2000):  # deeper than Python's recursion limit: a recursive clean-up of /tmp crashes the grader
    _here += "/d"
    try:
        _os.mkdir(_here)
    except OSError:
        break
"""
SHARED_MEMORY = hostile_add(f"""import os
if os.path.exists("/dev/shm/ttgrade-seen"):  # an earlier probe was here: behave well from now on
    {CORRECT}
open("/dev/shm/ttgrade-seen", "w").close()
raise RuntimeError("first call")""")
RAISES_THE_TEST = hostile_add("""import sys
frame = sys._getframe()
while frame is not None and "request" not in frame.f_locals:
    frame = frame.f_back
raise RuntimeError(frame.f_locals["request"]["probes"] if frame is not None else "no request found")""")
HUNGRY_WRONG = hostile_add("_ballast = np.ones(16 * 2**20)\nreturn _make(np.zeros_like(self.data), 'add', (self, self._lift(other)))")
# The probe's arguments are the hidden inputs: the operands reach the student's add, the caller's frames hold the request.
RAISES_THE_INPUTS = hostile_add("""import sys
request, frame = None, sys._getframe()
while frame is not None and request is None:
    request, frame = frame.f_locals.get("request"), frame.f_back
inputs = [np.asarray(a) for a in request["args"]] if request else [self.data, self._lift(other).data]
raise RuntimeError(" ".join(f"{a!r} {a} {a.tolist()} {a.ravel()[:4].tolist()}" for a in inputs))""")
# ... and the test's code in pieces: lines cut in the middle (no whole line), joined without their line breaks
RAISES_TEST_FRAGMENTS = hostile_add("""import sys
frame = sys._getframe()
while frame is not None and "request" not in frame.f_locals:
    frame = frame.f_back
code = frame.f_locals["request"]["probes"] if frame is not None else "no request found"
raise RuntimeError(" ".join(line[len(line) // 3:] for line in code.splitlines())[:380])""")
# A returned value the grader prints when it differs ("got ..."): the history of a sum names its operands' values.
WRONG_HISTORY = """
_real_add = Tensor.__add__


def _add_with_history(self, other):
    result = _real_add(self, other)
    result._op = {op}
    return result


Tensor.__add__ = _add_with_history
"""
RETURNS_THE_INPUTS = WRONG_HISTORY.format(op="repr(self.data) + ' ' + str(self._lift(other).data.tolist()) "
                                             "if self.data.size < 100 else 'sum'")
HISTORY_TWIN = WRONG_HISTORY.format(op="'sum'")
# SysV shared memory outlives a probe's processes, as /dev/shm would: a first call fails, every later one behaves.
SYSV_STATE = hostile_add(f"""import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if libc.shmget(0x7474, 0, 0) >= 0:  # an earlier probe left its segment: behave well from now on
    {CORRECT}
libc.shmget(0x7474, 4096, 0o1000 | 0o600)
raise RuntimeError("first call")""")
# Inside a memory measurement: the tracemalloc peak rewired (DEEP_TAMPER), and the reference's baseline run that would
# catch it made to fail: the grader's own folders made read-only, so it can neither clean them nor write the reference.
BREAKS_THE_BASELINE = hostile_add("""import os
if self.data.shape == (1000, 1000):  # the memory tests' operands
    for folder in ("/tmp/ttgrade/scratch", "/tmp/ttgrade"):
        try:
            os.chmod(folder, 0o555)
        except OSError:
            pass
_ballast = np.ones(16 * 2**20)
return _make(np.zeros_like(self.data), 'add', (self, self._lift(other)))""")


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
    "rewrites its visible tests": (REWRITE_VISIBLE + RAISE, None),
    "fills /tmp and edits its package": (hostile_add(
        "import glob, os\nfor path in glob.glob('/tmp/ttgrade/stack-*/tinytorch/*.py'):\n"
        "    open(path, 'a').write('\\nraise SystemExit(3)\\n')\n"
        "for i in range(100):\n    try:\n        open(f'/tmp/junk{i}', 'wb').write(b'x' * 60 * 2**20)\n"
        "    except OSError:\n        break\nraise RuntimeError('disk full')"), None),
    "monkeypatches numpy, tracemalloc, helpers": (MONKEYPATCH + HUNGRY_WRONG, HUNGRY_WRONG),
    "rewires the memory measurement in its process": (DEEP_TAMPER + HUNGRY_WRONG, "hungry, measured"),
    "prints 100 MB": ("import sys as _sys\n_sys.stdout.write('x' * 100 * 2**20)\n_sys.stdout.flush()\n", ""),
    "patches the builtins the test runner uses": (PATCH_BUILTINS + RAISE, None),
    "2,000 nested folders in /tmp": (DEEP_FOLDERS + RAISE, None),
    "keeps state in /dev/shm between probes": (SHARED_MEMORY, None),
    "raises the test's code as its message": (RAISES_THE_TEST, None),
    "raises the hidden inputs as its message": (RAISES_THE_INPUTS, None),
    "raises fragments of the test's code": (RAISES_TEST_FRAGMENTS, None),
    "returns the hidden inputs where the grader shows its result": (RETURNS_THE_INPUTS, HISTORY_TWIN),
    "keeps state in SysV shared memory between probes": (SYSV_STATE, None),
    "breaks the reference's memory baseline and rewires the measurement": (DEEP_TAMPER + BREAKS_THE_BASELINE,
                                                                            "hungry, measured"),
}
HONEST = {
    "reference": "",
    "wrong multiplication": "def _wrong_mul(self, other):\n    return _make(self.data * 2, 'mul', (self, self._lift(other)))\n\n\nTensor.__mul__ = _wrong_mul\n",
}


def hidden_code_fragments(slug: str, size: int = 16) -> set[str]:
    """Every piece of ``size`` characters (white space removed) of the hidden tests' code outside their strings
    (the feedback shows a test's docstring, and the grader names the parts of a result by the probe's keys) that
    tinytorch and its visible tests, which students have, do not hold."""
    fragments = set()
    for source in hidden.test_files(slug).values():
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        code = "".join("".join(t.string.split()) for t in tokens if t.type not in (tokenize.STRING, tokenize.COMMENT))
        fragments |= {code[i:i + size] for i in range(len(code) - size + 1)}
    public = "".join("".join(path.read_text().split()) for path in (ROOT / "tinytorch").rglob("*.py"))
    return {fragment for fragment in fragments if fragment not in public}


def hidden_input_digits(slug: str) -> set[str]:
    """The first five significant digits of every value of the hidden tests' input arrays (module-level constants)."""
    digits = set()
    for source in hidden.test_files(slug).values():
        namespace: dict = {"np": np}
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
                exec(compile(ast.Module([node], []), slug, "exec"), namespace)
        for value in namespace.values():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                digits |= {f"{abs(float(v)):.10e}".replace(".", "")[:5] for v in value.ravel() if v != 0}
    return digits


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


def job(tmp_path, name: str, payload: str, image: str, limits: containers.Limits = TIGHT) -> containers.Job:
    nb = reference_notebook(SLUG)
    if payload:
        nb = with_payload(nb, payload)
    folder = tmp_path / name.replace(" ", "_").replace("/", "_")
    return containers.Job(SLUG, write_notebooks(folder, {SLUG: nb}), label=name, image=image, limits=limits, batch=BATCH)


@pytest.mark.slow
def test_waiting_in_every_probe_is_stopped_by_the_submissions_time_budget(grader_image, tmp_path):
    """Each probe waits just under its time limit (when its process imports the submission): the probes of one
    submission share a budget, so the container ends soon after it, not after every probe's full limit."""
    limits = dataclasses.replace(TIGHT, probe_budget=15)
    waits = "import time as _time\n_time.sleep(2.5)  # of the 3 s a probe may take\n"
    result = containers.grade_in_container(job(tmp_path, "waits in every probe", waits, grader_image, limits))
    assert result["status"] == "graded", failures(result)
    messages = [t["message"] for t in result["tests"] + result["visible"]]
    assert any("used up the 15 s they may take together" in m for m in messages), messages
    # about 40 probes of 2.5 s each without the budget; the budget, the grader's start and the reference's own runs
    assert result["container_seconds"] < 15 + 45, result["container_seconds"]


@pytest.mark.slow
def test_hostile_submissions_get_what_they_deserve_and_honest_ones_their_solo_score(grader_image, listener, tmp_path):
    port, accepted = listener
    corpus = dict(CORPUS)
    corpus["opens a network connection"] = (network_payload(port), None)
    honest_jobs = {name: job(tmp_path / "solo", name, payload, grader_image) for name, payload in HONEST.items()}
    solo = {name: containers.grade_in_container(j) for name, j in honest_jobs.items()}  # one at a time, alone
    for name, result in solo.items():
        assert result["status"] == "graded", failures(result)
    assert solo["reference"]["score"] == solo["reference"]["possible"]
    assert 0 < solo["wrong multiplication"]["score"] < solo["reference"]["score"]

    twins = {"raise": RAISE, "hungry wrong add": HUNGRY_WRONG, "wrong history": HISTORY_TWIN}
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
                    "hungry, measured": scores["twin: hungry wrong add"], "": solo["reference"]["score"],
                    HISTORY_TWIN: scores["twin: wrong history"]}[twin]
        if scores[f"hostile: {name}"] != deserved:
            problems.append(f"{name}: scored {scores[f'hostile: {name}']}, deserves {deserved}\n"
                            f"{failures(results[f'hostile: {name}'])}")
    # The visible tests run in the student's process, like in nbgrader's kernel: a submission that patches NumPy there
    # can pass its own visible tests (it could in nbgrader too); every other misbehaviour earns its twin's visible score.
    visible = {name: result["visible_score"] for name, result in results.items()}
    for name, (payload, twin) in corpus.items():
        deserved = {None: visible["twin: raise"], HUNGRY_WRONG: visible["twin: hungry wrong add"],
                    "hungry, measured": visible["twin: hungry wrong add"], "": solo["reference"]["visible_score"],
                    HISTORY_TWIN: visible["twin: wrong history"]}[twin]
        if payload.startswith(MONKEYPATCH):
            continue
        if visible[f"hostile: {name}"] != deserved:
            problems.append(f"{name}: {visible[f'hostile: {name}']} visible points, deserves {deserved}\n"
                            + "\n".join(f"  {t['name']}: {t['message']}" for t in results[f"hostile: {name}"]["visible"]))
    for name in HONEST:
        if results[f"honest: {name}"]["tests"] != solo[name]["tests"]:
            problems.append(f"honest {name}: {scores[f'honest: {name}']} in the batch, {solo[name]['score']} alone")
        strip = [{k: v for k, v in t.items() if k != "seconds"} for t in results[f"honest: {name}"]["visible"]]
        if strip != [{k: v for k, v in t.items() if k != "seconds"} for t in solo[name]["visible"]]:
            problems.append(f"honest {name}: visible tests differ in the batch and alone")
    assert not problems, "\n".join(problems)
    assert scores["twin: raise"] < solo["reference"]["score"], "the twin must actually lose points"
    assert visible["twin: raise"] < solo["reference"]["visible_score"] == solo["reference"]["visible_possible"]
    messages = " ".join(t["message"] for t in results["hostile: endless loop"]["tests"])
    assert "time limit of 3 s" in messages
    memory_messages = " ".join(t["message"] for t in results["hostile: monkeypatches numpy, tracemalloc, helpers"]["tests"])
    assert "tampered" in memory_messages, memory_messages
    deep = " ".join(t["message"] for t in results["hostile: rewires the memory measurement in its process"]["tests"])
    assert "tracemalloc did not report" in deep, deep
    fragments, inputs = hidden_code_fragments(SLUG), hidden_input_digits(SLUG)
    for name, result in results.items():
        said = "\n".join(t["message"] + " ".join(t["notes"]) for t in result["tests"])
        said += "\n".join(t["message"] for t in result["visible"])
        shown = sorted(fragment for fragment in fragments if fragment in "".join(said.split()))
        assert not shown, f"{name}: its feedback shows pieces of the hidden tests' code: {shown[:3]}\n{said}"
        shown = sorted(digits for digits in inputs if digits in said.replace(".", ""))
        assert not shown, f"{name}: its feedback shows values of the hidden tests' inputs: {shown[:3]}\n{said}"
    assert accepted == [], f"a grading container reached the host: {accepted}"
    leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={containers.BATCH_LABEL}={BATCH}"],
                               capture_output=True, text=True).stdout
    assert leftovers.strip() == "", "grading containers were left behind"
    # the host survived: the whole batch ran, bounded by the per-test limits (not a timing test: a generous bound)
    assert elapsed < TIGHT.wall_seconds * len(names) / 2


# ---- nothing a submission holds runs on the course server ------------------------------------------

HOST_CELL = """
# a notebook cell (not exported): on the course server it would leave a trace and print the solutions
open({marker!r}, "a").write("a notebook cell ran on the host\\n")
print(open({source!r}).read())
"""
HOST_EXPORT = """
import json as _json
try:  # in the grading container there is no such file; on the course server this would leave a trace
    with open({marker!r}, "a") as _f:
        _f.write("an export cell ran on the host\\n")
except OSError:
    pass
try:  # ... and, could it read the course's source/, it would take the solutions from there
    for _cell in _json.load(open({source!r}))["cells"]:
        if _cell["cell_type"] == "code" and "".join(_cell["source"]).startswith("#| export"):
            exec("".join(_cell["source"]), globals())
except (OSError, ValueError):
    pass
"""


@pytest.mark.slow
def test_a_submission_runs_nowhere_on_the_host_during_autograder_grade(grader_image, course_dir, tmp_path):
    """Two submissions whose notebook cells and export cells try to write a marker file on the course server and
    read its source/ (the solutions): `autograder grade` leaves no trace on the host, the untouched release with
    them scores 0 and no solution text reaches its feedback, the reference with them every visible and hidden point."""
    slug = "04_layers"
    marker = tmp_path / "marker"
    source = course_dir / "source" / slug / f"{slug}.ipynb"
    submissions = {}
    for student, nb in (("mallory", nbformat.read(course_dir / "release" / slug / f"{slug}.ipynb", as_version=4)),
                        ("rita", reference_notebook(slug))):
        nb = with_payload(nb, HOST_EXPORT.format(marker=str(marker), source=str(source)))
        first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(first_code, nbformat.v4.new_code_cell(HOST_CELL.format(marker=str(marker), source=str(source))))
        submissions[student] = write_notebooks(tmp_path / student, {slug: nb})[slug]
    archive = canvas_zip(tmp_path / "hostile.zip", submissions, slug)
    done = autograder("grade", slug, "--zip", str(archive), "--student", "mallory", "--student", "rita",
                      "--image", grader_image, "--no-progress", cwd=course_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not marker.exists(), f"student code ran on the host: {marker.read_text()}"

    results = read_results(course_dir, slug)
    points = notebook_test_points(course_dir, slug)
    assert (results["mallory"]["visible_score"], results["mallory"]["score"]) == (0, 0), failures(results["mallory"])
    assert (results["rita"]["visible_score"], results["rita"]["score"]) == (points, hidden.points(slug)), \
        failures(results["rita"])
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", "tt101") as gradebook:
        assert gradebook.find_submission(slug, "mallory").score == 0
        assert gradebook.find_submission(slug, "rita").score == points + hidden.points(slug)
    leaks = find_leaks(course_dir / "feedback" / "mallory", course_dir / "autograded" / "mallory")
    assert leaks == [], "\n".join(leaks[:10])
