"""The grader process: the grading container's first and trusted process (pid 1).

    python -I -m ttgrade.parent  < bundle.json  > result line

The host (autograder/containers.py) starts one hardened container per submission and writes one JSON
*bundle* to its stdin: the hidden test files of the assignment, the reference and skeleton tinytorch
sources, limits and any datasets.  Nothing secret is ever on the container's disk: the bundle is read
into memory before any student code runs, and this process makes itself non-dumpable so that the
student's processes (same uid) cannot read its memory or its file descriptors through /proc.

The submission's notebooks are mounted read-only at /submission.  This process builds the student's
tinytorch packages in /tmp, runs the module's visible tests (the notebook's grade cells, generated as
``tinytorch/checks/test_NN_name.py``) one per fresh ``ttgrade.child`` process, then each hidden test
file with Otter (exception-format test files, ``otter.test_files``), each probe in a fresh child
process too, and writes ONE line to its stdout, which only it holds:
``RESULT_PREFIX + nonce + " " + json``.  Scores come only from there.

    python -I -m ttgrade.parent --from-secrets      (a Swarm job: autograder/swarm_jobs.py)

A Swarm job has no stdin and cannot be started without a network or as a user with no capabilities.
So this process starts as root with only CAP_SETUID, CAP_SETGID and CAP_NET_ADMIN, and before anything
of the submission runs (``take_delivery``): reads the bundle from its secrets (root's, mode 0400),
writes the notebooks to /submission (root's, read-only for everyone), deletes every network interface
but lo, then becomes uid 1000 for good with no capabilities, no_new_privs and non-dumpable. Nothing it
starts later can read the secrets, its memory, or reach a network.
"""
from __future__ import annotations

import base64
import ctypes
import dataclasses
import functools
import gzip
import hashlib
import importlib.abc
import importlib.util
import json
import io
import linecache
import os
import re
import shutil
import signal
import socket
import struct
import sys
import time
import traceback
import types

from . import lean_otter, runner
from .protocol import (BUNDLE_SECRET, DATASET_FILES, DATASETS, GRADER_GID, GRADER_UID, RESULT_PREFIX, SECRETS,
                       SUBMISSION, Bundle, Delivery, declared)

if __name__ == "__main__":  # the grading container's grader process: Otter's test files only (lean_otter.py)
    lean_otter.skip_package_init()
from otter.test_files import ExceptionTestFile, GradingResults  # noqa: E402 - after the choice above
from otter.version import __version__ as OTTER_VERSION  # noqa: E402

PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
MAX_BUNDLE = 512 * 2**20
NOTEBOOK_NAME = re.compile(r"^[0-9]{2}_[a-z0-9_]{1,40}\.ipynb$")


def harden_self() -> None:
    """Non-dumpable: /proc/1/{mem,fd,environ} become unreadable and ptrace impossible for the same uid."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGALRM", "SIGTSTP", "SIGTTIN", "SIGTTOU"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)  # as pid 1, an ignored signal from inside is dropped


def take_delivery() -> bytes:
    """A Swarm job's start, as root: the bundle (returned) and the notebooks from the secrets, the network gone,
    then this process uid 1000 for good, with no capabilities and no_new_privs. Raises if any step fails."""
    parts = sorted(name for name in os.listdir(SECRETS) if name.startswith(BUNDLE_SECRET + "."))
    if not parts:
        raise RuntimeError(f"no {BUNDLE_SECRET}.* in {SECRETS}: the job was started without its bundle")
    packed = b"".join(open(os.path.join(SECRETS, name), "rb").read() for name in parts)
    delivery: Delivery = json.loads(gzip.GzipFile(fileobj=io.BytesIO(packed)).read(MAX_BUNDLE))
    for name, data in delivery["submission"].items():
        if not NOTEBOOK_NAME.match(name):
            raise ValueError(f"the delivery names a notebook {name!r}")
        path = os.path.join(SUBMISSION, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        os.chmod(path, 0o444)
    os.chmod(SUBMISSION, 0o555)
    remove_network()
    drop_privileges()
    return json.dumps(delivery["bundle"]).encode()


def remove_network() -> None:
    """Delete every network interface but lo (rtnetlink RTM_DELLINK): Swarm cannot start a task without a network."""
    for index, name in socket.if_nameindex():
        if name == "lo":
            continue
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as rtnl:
            link = struct.pack("BBHiII", socket.AF_UNSPEC, 0, 0, index, 0, 0)  # struct ifinfomsg
            rtnl.send(struct.pack("IHHII", 16 + len(link), 17, 0x5, 1, 0) + link)  # RTM_DELLINK, REQUEST|ACK
            error = struct.unpack("i", rtnl.recv(4096)[16:20])[0]  # the NLMSG_ERROR answer: 0 or -errno
        if error:
            raise OSError(-error, f"deleting the network interface {name} failed")
    left = [name for _, name in socket.if_nameindex() if name != "lo"]
    if left:
        raise RuntimeError(f"network interfaces left besides lo: {left}")


def drop_privileges() -> None:
    """Become GRADER_UID:GRADER_GID for good (every uid and gid, so the capabilities go too), set no_new_privs,
    and check that no capability is left."""
    os.setgroups([])
    os.setresgid(GRADER_GID, GRADER_GID, GRADER_GID)
    os.setresuid(GRADER_UID, GRADER_UID, GRADER_UID)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS, 1) failed")
    with open("/proc/self/status") as f:
        status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    held = {key: status[key].strip() for key in ("CapInh", "CapPrm", "CapEff", "CapAmb") if int(status[key], 16)}
    if held or os.getuid() != GRADER_UID or status.get("NoNewPrivs", "").strip() != "1":
        raise RuntimeError(f"dropping privileges failed: uid {os.getuid()}, capabilities {held}")


class MemoryPackage(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serve ``tinytorch`` from sources held in memory (the reference never touches this container's disk)."""

    def __init__(self, files: dict[str, str]):
        self.files = files  # "tinytorch/tensor.py" -> source

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tinytorch" and not fullname.startswith("tinytorch."):
            return None
        rel = fullname.replace(".", "/")
        if f"{rel}/__init__.py" in self.files:
            return importlib.util.spec_from_loader(fullname, self, origin=f"<reference>/{rel}/__init__.py", is_package=True)
        if f"{rel}.py" in self.files:
            return importlib.util.spec_from_loader(fullname, self, origin=f"<reference>/{rel}.py")
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        rel = module.__spec__.origin[len("<reference>/"):]
        code = compile(self.files[rel], module.__spec__.origin, "exec")
        exec(code, module.__dict__)


def load_export_module(source: str) -> types.ModuleType:
    """tinytorch/export.py (standard library only), the same extractor students export with."""
    module = types.ModuleType("ttgrade_export")
    exec(compile(source, "<reference>/tinytorch/export.py", "exec"), module.__dict__)
    return module


def student_module(export, slug: str, target: str) -> tuple[str | None, str]:
    """(source, problem): module ``slug``'s file as the student's notebook exports it, or why not."""
    notebook = os.path.join(SUBMISSION, f"{slug}.ipynb")
    if not os.path.isfile(notebook):
        return None, f"no notebook {slug}.ipynb was submitted"
    try:
        found, code = export.notebook_code(export.Path(notebook))
    except export.ExportError as error:
        return None, f"{slug}.ipynb: {error}"
    except Exception as error:  # noqa: BLE001 - a malformed notebook is the submission's problem
        return None, f"{slug}.ipynb could not be read ({type(error).__name__})"
    if found != target:
        return None, f"{slug}.ipynb exports to tinytorch/{found}.py, but module {slug} is tinytorch/{target}.py"
    return export.HEADER.format(notebook=f"{slug}.ipynb") + "\n" + code, ""


def build_stack(bundle: Bundle, export, kind: str, folder: str, context) -> str:
    """Write the student's tinytorch for ``kind`` ("module" or "own") into ``folder``; return the problems."""
    reference, skeleton = bundle["reference"], bundle["skeleton"]
    files = {rel: text for rel, text in reference.items() if rel not in skeleton}  # hand-written files
    number = bundle["assignment"][:2]
    problems = []
    for module in bundle["modules"]:
        rel = f"tinytorch/{module['target']}.py"
        if module["slug"][:2] > number or (kind == "module" and module["slug"][:2] < number):
            files[rel] = skeleton[rel] if module["slug"][:2] > number else reference[rel]
            continue
        source, problem = student_module(export, module["slug"], module["target"])
        files[rel] = source if source is not None else skeleton[rel]
        if problem:
            problems.append(problem)
    context.stacks[folder] = files
    runner.write_files(folder, files)
    if kind == "own" and problems:
        return "this test uses your own code for every module up to this one, and " + "; ".join(problems)
    return "; ".join(problems)


def probe_sources(source: str) -> str:
    """The @probe functions of a test file, without their decorators, as one source text."""
    import ast
    tree = ast.parse(source)
    lines = source.splitlines()
    chunks = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                (isinstance(d, ast.Name) and d.id == "probe") or (isinstance(d, ast.Attribute) and d.attr == "probe")
                for d in node.decorator_list):
            chunks.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
    return "\n\n\n".join(chunks) + "\n"


def dataset_files(bundle: Bundle) -> dict[str, bytes]:
    """The dataset files the bundle carries, and those a Swarm job reads from its node's copy (checked)."""
    files = {name: base64.b64decode(data) for name, data in bundle.get("datasets", {}).items()}
    for rel, digest in bundle.get("dataset_digests", {}).items():
        with open(os.path.join(DATASETS, rel), "rb") as f:
            files[rel] = f.read()
        if hashlib.sha256(files[rel]).hexdigest() != digest:
            raise ValueError(f"the grader node's {rel} differs from the host's: copy the datasets to the node again")
    return files


def load_datasets(files: dict[str, bytes]) -> dict:
    """The datasets (trusted: they come from the host or the node's read-only copy), as arrays and text; MNIST's
    IDX files are read by the reference tinytorch (module 10's ``parse_idx``), imported from memory here."""
    out: dict = {}
    if all(rel in files for rel in DATASET_FILES["mnist"]):
        from tinytorch.data import parse_idx
        images, labels, test_images, test_labels = (parse_idx(gzip.decompress(files[rel]), rel)
                                                    for rel in DATASET_FILES["mnist"])
        out["mnist"] = {"train_images": images, "train_labels": labels,
                        "test_images": test_images, "test_labels": test_labels}
    (text,) = DATASET_FILES["tinyshakespeare"]
    if text in files:
        out["tinyshakespeare"] = files[text].decode("utf-8")
    return out


VISIBLE_FILE = "visible/tests.py"  # the file name the visible-test probe is compiled under, in this process
VISIBLE_PROBES = r"""
@probe
def visible_test(tt, module, source, name):
    # One visible test (a grade cell of the notebook), on the student's tinytorch, as `tinytorch.check` runs it.
    # The tests come in the request, never from a file the student's code could rewrite while it is imported.
    import linecache
    import os
    import sys
    import traceback
    import types
    filename = "<visible tests of " + module + ">"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    tests = sys.modules[module] = types.ModuleType(module)
    tests.__file__ = filename
    exec(compile(source, filename, "exec"), tests.__dict__)
    try:
        getattr(tests, name)()
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)
        package = os.path.dirname(os.path.abspath(tt.__file__))
        text = str(error).strip() or "(no message)"
        message = type(error).__name__ + ": " + (text if len(text) <= 400 else text[:400] + "...")
        mine = [f for f in frames if f.filename.startswith(package)]
        test = [f for f in frames if f.filename == filename]
        if test:
            message += "\n  at the test's line: " + (test[-1].line or "")
        if mine:
            message += ("\n  raised in your tinytorch/" + os.path.relpath(mine[-1].filename, package) + ", line "
                        + str(mine[-1].lineno) + ": " + (mine[-1].line or ""))
        return {"passed": False, "message": message}
    return {"passed": True, "message": ""}
"""


def run_visible(bundle: Bundle, context, stack: tuple[str, str]) -> list[dict]:
    """Each visible test in a fresh student process on the module stack (module N the student's, modules
    before N the reference's): [{name, points, passed, score, message}], in the notebook's order."""
    visible = bundle.get("visible")
    if not visible:
        return []
    from .api import probe
    namespace = {"probe": probe}
    exec(compile(VISIBLE_PROBES, VISIBLE_FILE, "exec"), namespace)
    context.files[VISIBLE_FILE] = runner.FileContext(stack[0], probe_sources(VISIBLE_PROBES), stack[1])
    results = []
    for name, points in visible["points"].items():
        outcome = context.run(namespace["visible_test"], (visible["module"], visible["source"], name))
        value = outcome.value if outcome.status == "ok" else None
        if isinstance(value, dict) and value.get("passed") is True:
            passed, message = True, ""
        elif isinstance(value, dict) and value.get("passed") is False and isinstance(value.get("message"), str):
            passed, message = False, value["message"][:2000]
        else:
            passed = False
            message = outcome.message if outcome.status != "ok" else "the test sent back an unusable result"
        results.append({"name": name, "points": points, "passed": passed, "score": points if passed else 0,
                        "message": message, "seconds": round(outcome.seconds, 3)})
    return results


class HiddenTestFile(ExceptionTestFile):
    """Otter's exception-based test file whose failure messages never quote the test's code."""

    @classmethod
    def from_string(cls, s, path="<string>"):
        """As Otter's, but a test case without a name is named after its function, not numbered."""
        test_file = super().from_string(s, path=path)
        test_file.test_cases = [dataclasses.replace(tc, name=tc.body.test_func.__name__)
                                if tc.name.startswith(f"{test_file.name} - ") else tc
                                for tc in test_file.test_cases]
        return test_file

    def _generate_error_message(self, excp, context=0):
        text = str(excp) if isinstance(excp, AssertionError) and str(excp) else f"{type(excp).__name__}: {excp}"
        return text[:2000]


WORK = "/tmp/ttgrade"  # the grader's own folder: the stacks it builds, the probes' scratch space


def start_context(bundle: Bundle) -> runner.Context:
    """The grading run's state, the reference served from memory, the datasets loaded."""
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(os.path.join(WORK, "scratch"))
    context = runner.Context(bundle["limits"], os.path.join(WORK, "scratch"))
    context.keep = {WORK}
    runner.CONTEXT = context
    context.reference_files = dict(bundle["reference"])
    sys.meta_path.insert(0, MemoryPackage(bundle["reference"]))
    context.datasets = load_datasets(dataset_files(bundle))
    return context


def load_hidden_tests(bundle: Bundle, context: runner.Context, stack_for) -> tuple[list, dict[str, str]]:
    """Each hidden test file as an Otter test file whose probes run on the stack it declares; and each file's kind."""
    test_files, kinds = [], {}
    for filename, source in sorted(bundle["tests"].items()):
        folder, problem = stack_for(declared(source, "stack", "module"))
        path = f"hidden/{bundle['assignment']}/{filename}"
        linecache.cache[path] = (len(source), None, source.splitlines(True), path)
        context.files[path] = runner.FileContext(folder, probe_sources(source), problem, secret=source)
        test_file = HiddenTestFile.from_string(source, path=path)
        kinds[test_file.name] = declared(source, "kind", "correctness")
        for case in test_file.test_cases:
            wrap_case(case, f"{test_file.name}/{case.name}", context)
        test_files.append(test_file)
    return test_files, kinds


def hidden_results(test_files: list, kinds: dict[str, str], context: runner.Context) -> list[dict]:
    """What each hidden test case did, for the feedback: never its code."""
    tests = []
    for test_file in test_files:
        for result in test_file.test_case_results:
            case = result.test_case
            doc = (case.body.test_func.__doc__ or "").strip().split("\n")[0]
            tests.append({"file": test_file.name, "kind": kinds[test_file.name], "name": case.name, "checks": doc,
                          "points": case.points, "passed": bool(result.passed),
                          "score": case.points if result.passed else 0,
                          "message": "" if result.passed else result.message.split("\n", 1)[-1],
                          "notes": context.notes.get(f"{test_file.name}/{case.name}", [])})
    return tests


def run_tests(bundle: Bundle) -> dict:
    """The visible tests, then the hidden tests with Otter; the result the host records."""
    context = start_context(bundle)
    export = load_export_module(bundle["reference"]["tinytorch/export.py"])
    stacks: dict[str, tuple[str, str]] = {}

    def stack_for(kind: str) -> tuple[str, str]:
        """The student's module stack of this kind, built on first use: (folder, problem)."""
        if kind not in stacks:
            folder = os.path.join(WORK, f"stack-{kind}")
            stacks[kind] = (folder, build_stack(bundle, export, kind, folder, context))
        return stacks[kind]

    visible = run_visible(bundle, context, stack_for("module")) if bundle.get("visible") else []
    test_files, kinds = load_hidden_tests(bundle, context, stack_for)
    for test_file in test_files:
        test_file.run({})
    results = GradingResults(test_files)
    return {"assignment": bundle["assignment"], "otter_version": OTTER_VERSION,
            "score": results.total, "possible": results.possible,
            "tests": hidden_results(test_files, kinds, context), "problems": sorted({p for _, p in stacks.values() if p}),
            "otter": results_as_ottr(test_files), "visible": visible,
            "visible_score": sum(t["score"] for t in visible), "visible_possible": sum(t["points"] for t in visible)}


def wrap_case(case, key: str, context) -> None:
    """Record which test case is running, so notes land in its feedback."""
    original = case.body.test_func

    @functools.wraps(original)
    def run(**kwargs):
        context.current = key
        try:
            original(**kwargs)
        finally:
            context.current = None
    case.body.test_func = run


def results_as_ottr(test_files) -> dict:
    """Otter's language-neutral results format (what ``GradingResults.from_ottr_json`` reads), without test code."""
    return {"test_file_results": [
        {"filename": tf.path, "points": None, "test_case_results": [
            {"test_case": {"name": r.test_case.name, "code": "", "hidden": True, "points": r.test_case.points,
                           "success_message": None, "failure_message": None},
             "error": "" if r.passed else r.message.split("\n", 1)[-1], "passed": bool(r.passed)}
            for r in tf.test_case_results]}
        for tf in test_files]}


def main() -> int:
    started = time.monotonic()
    harden_self()
    from_secrets = sys.argv[1:] == ["--from-secrets"]
    raw = b"" if from_secrets else sys.stdin.buffer.read(MAX_BUNDLE + 1)
    os.close(0)
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing else this process (Otter, NumPy) prints can mix with the result line
    try:
        if from_secrets:
            raw = take_delivery()
            harden_self()  # again: becoming another uid resets the dumpable flag to the system's default
        if len(raw) > MAX_BUNDLE:
            raise ValueError("the bundle is too large")
        bundle = json.loads(raw)
        nonce = bundle["nonce"]
        result = run_tests(bundle)
        result["status"] = "graded"
    except Exception as error:  # noqa: BLE001 - reported to the host as a grading error, never a score
        nonce = locals().get("nonce", "")
        result = {"status": "error", "message": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc()[-4000:]}
    result["seconds"] = round(time.monotonic() - started, 3)
    out.write(RESULT_PREFIX + nonce + " " + json.dumps(result) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
