"""Run a module's visible tests with a readable report: ``python -m tinytorch.check 02``.

The tests are the grade cells of the module's notebook, generated into
``tinytorch/checks/test_NN_name.py``; they run against whatever ``tinytorch``
is importable (your exported code on the hub, the reference in this repo).
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import TextIO

CHECKS = Path(__file__).resolve().parent / "checks"
STUB_MARK = 'raise NotImplementedError("implement in module '  # what the skeleton's stubs raise


def available_modules() -> dict[str, str]:
    """Module number ("02") -> test-module name ("test_02_tensor")."""
    return {p.stem[5:7]: p.stem for p in sorted(CHECKS.glob("test_[0-9][0-9]_*.py"))}


def code_under_test(tests: ModuleType) -> str:
    """Which file the tests import their names from: the student's export, or the skeleton's stubs."""
    found = re.search(r"^from (tinytorch\.\w+) import \*", Path(str(tests.__file__)).read_text(), re.MULTILINE)
    module = sys.modules.get(found.group(1)) if found else None
    path = getattr(module, "__file__", None)
    if not path:
        return "(unknown)"
    if STUB_MARK in Path(path).read_text():
        return f"{path} (the skeleton's stubs: export your notebook first)"
    return path


def run_module(stem: str, out: TextIO = sys.stdout) -> tuple[int, int, float, float]:
    """Run every test of one module; return (passed, failed, points earned, points possible)."""
    try:
        tests = importlib.import_module(f"tinytorch.checks.{stem}")
    except Exception as error:  # the student's code may not even import
        print(f"{stem}: cannot import the code under test: {type(error).__name__}: {error}", file=out)
        return 0, 1, 0.0, 0.0
    passed = failed = 0
    earned = possible = 0.0
    print(f"module {tests.MODULE}", file=out)
    print(f"  code under test: {code_under_test(tests)}", file=out)
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
        else:
            passed += 1
            earned += points
            print(f"  ok   {name} [{points:g} pt] ({time.perf_counter() - start:.2f} s)", file=out)
    return passed, failed, earned, possible


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
