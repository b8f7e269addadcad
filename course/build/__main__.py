"""The course build's command line.

    python -m course.build export          write the generated files (tinytorch/, tinytorch/checks/)
    python -m course.build check           exit 1 if committed files drifted from course/, or a module's
                                           stored PyTorch comparison is missing or older than its cell
    python -m course.build comparisons [NN...]  run each module's PyTorch comparison (PyTorch installed) and
                                           store what it printed in tinytorch/comparisons.json: what the
                                           notebooks show where PyTorch is not installed
    python -m course.build notebooks DIR   write each module as a notebook, solutions in
    python -m course.build skeleton DIR    write the student package: every solution region
                                           replaced by NotImplementedError naming its function and
                                           module and saying to finish and export that notebook,
                                           plus the overlay hook that finds the student's exports,
                                           and course/milestones/ beside it
    python -m course.build leaks PATH...   exit 1 if any file under PATH holds solution text, a mark
                                           scheme or a hidden test (run it on whatever students get)
    python -m course.build lines           each module's exercises, solution lines, written questions
                                           and a time estimate: how balanced the course is

The nbgrader course directory: `autograder course DIR --config course.yml` (autograder/README.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course.build import comparisons
from course.build.leaks import find_leaks
from course.build.package import drift, export, write_notebooks
from course.build.skeleton import write_skeleton
from course.build.sources import CourseError, course_modules, module_size


def check() -> int:
    problems, old_figures = drift(), comparisons.stale()
    for problem in problems:
        print(f"drift: {problem}", file=sys.stderr)
    if problems:
        print("run `python -m course.build export` and commit the result", file=sys.stderr)
    for problem in old_figures:
        print(f"comparisons: {problem}", file=sys.stderr)
    if problems or old_figures:
        return 1
    print("tinytorch/ matches course/, and every module's stored PyTorch comparison is current")
    return 0


def leaks(paths: list[Path]) -> int:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    found = find_leaks(*paths)
    for leak in found:
        print(f"leak: {leak}", file=sys.stderr)
    if found:
        return 1
    print(f"no solution text, mark scheme or hidden test in {' '.join(map(str, paths))}")
    return 0


def lines() -> int:
    sizes = [module_size(module) for module in course_modules()]
    print(f"{'module':<18} {'exercises':>9} {'solution lines':>14} {'questions':>9} {'hours (est.)':>12}")
    for size in sizes:
        print(f"{size.module.slug:<18} {size.exercises:>9} {size.solution_lines:>14} {size.questions:>9} {size.hours:>12.1f}")
    print(f"{'total':<18} {sum(s.exercises for s in sizes):>9} {sum(s.solution_lines for s in sizes):>14} "
          f"{sum(s.questions for s in sizes):>9} {sum(s.hours for s in sizes):>12.1f}")
    print("hours: solution lines / 20 + 0.25 per written question + 0.5 (course/build/sources.py, ModuleSize.hours)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("export", help="write tinytorch/ and tinytorch/checks/ from course/")
    sub.add_parser("check", help="fail if the committed generated files differ from course/ or a stored "
                                 "PyTorch comparison is missing or stale")
    sub.add_parser("comparisons", help="run the modules' PyTorch comparisons and store what they print").add_argument(
        "modules", nargs="*", help="NN or NN_name (default: every module)")
    sub.add_parser("notebooks", help="write the modules as notebooks with solutions").add_argument("out_dir", type=Path)
    sub.add_parser("skeleton", help="write the student tinytorch package (solutions stubbed)").add_argument(
        "out_dir", type=Path)
    sub.add_parser("leaks", help="fail if files students get hold solutions, mark schemes or hidden tests").add_argument(
        "paths", type=Path, nargs="+")
    sub.add_parser("lines", help="print each module's solution lines and a time estimate")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            print("\n".join(export()) or "tinytorch/ is up to date")
        elif args.command == "check":
            return check()
        elif args.command == "notebooks":
            print("\n".join(f"wrote {path}" for path in write_notebooks(args.out_dir)))
        elif args.command == "comparisons":
            print("\n".join(comparisons.record(args.modules)))
        elif args.command == "lines":
            return lines()
        elif args.command == "skeleton":
            print(f"wrote {write_skeleton(args.out_dir)}")
        else:
            return leaks(args.paths)
    except CourseError as error:
        print(f"course error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
