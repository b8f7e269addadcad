"""Run a module's visible tests with a readable report: ``python -m tinytorch.check 02``.

The tests are the grade cells of the module's notebook, generated into
``tinytorch/checks/test_NN_name.py``; they run against whatever ``tinytorch``
is importable (your exported code on the hub, the reference in this repo).
The report names the code each test used: for every course module up to the
one checked, your export (from your overlay), the skeleton's stub (not
exported yet) or the reference. When a test fails in code of an earlier
module, or an earlier module you exported fails its own tests, the report
says which module to check first.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TextIO

PACKAGE = Path(__file__).resolve().parent
CHECKS = PACKAGE / "checks"
STUB_MARK = 'raise NotImplementedError("implement in module '  # what the skeleton's stubs raise
IMPORT_LINE = re.compile(r"^from tinytorch\.(\w+) import \*", re.MULTILINE)


@dataclass(frozen=True)
class CourseModule:
    number: str   # "02"
    stem: str     # "test_02_tensor": its visible tests in tinytorch/checks/
    target: str   # "tensor": the file of tinytorch it builds

    @property
    def slug(self) -> str:
        return self.stem[5:]


def course_modules() -> dict[str, CourseModule]:
    """Module number -> the module, read from the generated visible tests (each imports its module's file)."""
    modules = {}
    for path in sorted(CHECKS.glob("test_[0-9][0-9]_*.py")):
        found = IMPORT_LINE.search(path.read_text())
        modules[path.stem[5:7]] = CourseModule(path.stem[5:7], path.stem, found.group(1) if found else "")
    return modules


def available_modules() -> dict[str, str]:
    """Module number ("02") -> test-module name ("test_02_tensor")."""
    return {number: module.stem for number, module in course_modules().items()}


def origin(path: str | None) -> str:
    """Whose code a tinytorch file is: "export" (the student's overlay), "stub" (the skeleton's) or "reference"."""
    if not path:
        return "missing"
    if Path(path).resolve().parent != PACKAGE:
        return "export"
    return "stub" if STUB_MARK in Path(path).read_text() else "reference"


def describe(module: CourseModule) -> str:
    """One line: which file of module ``module`` is imported, and whose code it is."""
    loaded = sys.modules.get(f"tinytorch.{module.target}")
    path = getattr(loaded, "__file__", None)
    return {"export": f"your export, {path}",
            "stub": f"the skeleton's stubs (not exported yet: run the last cell of {module.slug}.ipynb)",
            "reference": f"the reference, {path}",
            "missing": "not imported"}[origin(path)]


def used_modules(modules: list[CourseModule]) -> str:
    """The imported ones among ``modules``, grouped by whose code they are (your exports, stubs, reference)."""
    groups: dict[str, list[str]] = {}
    folders = set()
    for module in modules:
        path = getattr(sys.modules.get(f"tinytorch.{module.target}"), "__file__", None)
        if path:
            groups.setdefault(origin(path), []).append(module.number)
            if origin(path) == "export":
                folders.add(str(Path(path).parent))
    labels = {"export": f"your exports ({', '.join(sorted(folders))})", "stub": "not exported (stubs)",
              "reference": "the reference"}
    return "; ".join(f"{labels[kind]}: {' '.join(numbers)}" for kind, numbers in groups.items()) or "none"


def code_under_test(tests: ModuleType) -> str:
    """Which file the tests import their names from: the student's export, or the skeleton's stubs."""
    found = IMPORT_LINE.search(Path(str(tests.__file__)).read_text())
    module = sys.modules.get(f"tinytorch.{found.group(1)}") if found else None
    path = getattr(module, "__file__", None)
    if not path:
        return "(unknown)"
    if origin(path) == "stub":
        return f"{path} (the skeleton's stubs: export your notebook first)"
    return path


def raised_in(error: BaseException, checked: CourseModule) -> CourseModule | None:
    """The earlier course module whose file the error was raised in (the innermost tinytorch frame), if any."""
    by_target = {m.target: m for m in course_modules().values()}
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        module = by_target.get(Path(frame.filename).stem)
        if module is not None and Path(frame.filename).parent.name != "checks":
            return module if module.number < checked.number else None
    return None


def run_module(stem: str, out: TextIO = sys.stdout) -> tuple[int, int, float, float]:
    """Run every test of one module; return (passed, failed, points earned, points possible)."""
    checked = next(m for m in course_modules().values() if m.stem == stem)
    try:
        tests = importlib.import_module(f"tinytorch.checks.{stem}")
    except Exception as error:  # the student's code may not even import
        print(f"{stem}: cannot import the code under test: {type(error).__name__}: {error}", file=out)
        earlier = raised_in(error, checked)
        if earlier is not None:
            print(f"  the error is in module {earlier.slug}'s code ({earlier.target}.py): "
                  f"run python -m tinytorch.check {earlier.number} first", file=out)
        return 0, 1, 0.0, 0.0
    passed = failed = 0
    earned = possible = 0.0
    print(f"module {tests.MODULE}", file=out)
    print(f"  code under test: {code_under_test(tests)}", file=out)
    earlier_modules = [m for m in course_modules().values() if m.number < checked.number]
    if earlier_modules:
        print(f"  earlier modules it uses: {used_modules(earlier_modules)}", file=out)
    blamed: set[str] = set()
    for name, points in tests.POINTS.items():
        possible += points
        start = time.perf_counter()
        try:
            getattr(tests, name)()
        except Exception as error:
            failed += 1
            where = traceback.extract_tb(error.__traceback__)[-1]
            message = str(error).strip() or "(no message)"
            print(f"  FAIL {name} [{points:g} pt] {type(error).__name__}: {message}", file=out)
            print(f"       at {Path(where.filename).name}:{where.lineno}: {where.line}", file=out)
            earlier = raised_in(error, checked)
            if earlier is not None:
                blamed.add(earlier.number)
                print(f"       the error is raised in module {earlier.slug}'s code ({earlier.target}.py, "
                      f"{describe(earlier)}): run python -m tinytorch.check {earlier.number}", file=out)
        else:
            passed += 1
            earned += points
            print(f"  ok   {name} [{points:g} pt] ({time.perf_counter() - start:.2f} s)", file=out)
    if failed:
        report_broken_earlier_modules(earlier_modules, blamed, out)
    return passed, failed, earned, possible


def report_broken_earlier_modules(earlier: list[CourseModule], blamed: set[str], out: TextIO) -> None:
    """Run the tests of the earlier modules the student exported; name those that fail (their contract broke)."""
    for module in earlier:
        loaded = sys.modules.get(f"tinytorch.{module.target}")
        if origin(getattr(loaded, "__file__", None)) != "export":
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            quiet = io.StringIO()
            _, failed, _, _ = run_module(module.stem, out=quiet)
        if failed:
            failing = re.findall(r"^  FAIL (\w+)", quiet.getvalue(), re.MULTILINE)
            print(f"  note: your exported module {module.slug} fails {failed} of its own visible test(s) "
                  f"({', '.join(failing)}); the tests here build on it, so fix it first: "
                  f"python -m tinytorch.check {module.number}", file=out)
        elif module.number in blamed:
            print(f"  note: module {module.slug} passes its own tests, but this module uses it in a way they do "
                  f"not cover: read the error above and its line in {module.target}.py", file=out)


def main(argv: list[str] | None = None) -> int:
    modules = available_modules()
    parser = argparse.ArgumentParser(prog="python -m tinytorch.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", metavar="NN",
                        help=f"module numbers to check (default: all); available: {' '.join(modules)}")
    args = parser.parse_args(argv)
    wanted = [m.zfill(2) for m in args.modules] or list(modules)
    unknown = [m for m in wanted if m not in modules]
    if unknown:
        print(f"no visible tests for module(s) {', '.join(unknown)}; available: {' '.join(modules)}", file=sys.stderr)
        return 2
    total_passed = total_failed = 0
    for number in wanted:
        passed, failed, earned, possible = run_module(modules[number])
        print(f"  {earned:g}/{possible:g} points")
        total_passed, total_failed = total_passed + passed, total_failed + failed
    print(f"{total_passed} passed, {total_failed} failed")
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
