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
"""
from __future__ import annotations

import base64
import ctypes
import dataclasses
import functools
import gzip
import importlib.abc
import importlib.util
import json
import linecache
import os
import shutil
import signal
import sys
import time
import traceback
import types

import otter
from otter.test_files import ExceptionTestFile, GradingResults

from . import runner
from .protocol import DATASET_FILES, RESULT_PREFIX, SUBMISSION, Bundle, declared

PR_SET_DUMPABLE = 4
MAX_BUNDLE = 512 * 2**20


def harden_self() -> None:
    """Non-dumpable: /proc/1/{mem,fd,environ} become unreadable and ptrace impossible for the same uid."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGALRM", "SIGTSTP", "SIGTTIN", "SIGTTOU"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)  # as pid 1, an ignored signal from inside is dropped


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


def load_datasets(raw: dict[str, str]) -> dict:
    """The datasets the bundle carries (trusted: they come from the host), as arrays and text; MNIST's IDX
    files are read by the reference tinytorch (module 10's ``parse_idx``), imported from memory here."""
    files = {name: base64.b64decode(data) for name, data in raw.items()}
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
    context.datasets = load_datasets(bundle.get("datasets", {}))
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
    return {"assignment": bundle["assignment"], "otter_version": otter.__version__,
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
    raw = sys.stdin.buffer.read(MAX_BUNDLE + 1)
    os.close(0)
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing else this process (Otter, NumPy) prints can mix with the result line
    try:
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
