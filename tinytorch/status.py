"""Where you are in the course: ``python -m tinytorch.status``.

For each module: whether your tinytorch uses your exported code for it (or still the skeleton's stub), and
how many of its visible tests pass on it; for each milestone: whether the modules it needs are exported
(unlocked) and whether it passed when you last ran it; then the next step. It runs the same visible tests
as ``python -m tinytorch.check`` (a few seconds in all) and changes nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tinytorch.check import CourseModule, course_modules, origin, run_module
from tinytorch.export import overlay_path


@dataclass(frozen=True)
class Milestone:
    name: str         # the program: python -m course.milestones.<name>
    title: str
    last_module: str  # it uses modules 02..last_module


MILESTONES = (Milestone("xor", "XOR inference and training", "07"),
              Milestone("mnist_cnn", "MNIST CNN", "12"),
              Milestone("tinygpt", "TinyGPT on Tiny Shakespeare", "15"))


def needed_modules(milestone: Milestone) -> list[CourseModule]:
    """The course modules whose code a milestone runs, in course order (01 is tooling, not needed)."""
    return [m for number, m in course_modules().items() if "02" <= number <= milestone.last_module]


def module_origin(module: CourseModule) -> str:
    """"export", "stub" or "reference": whose code ``tinytorch.<target>`` is, imported as the milestones do."""
    imported = __import__(f"tinytorch.{module.target}", fromlist=["_"])
    return origin(getattr(imported, "__file__", None))


def first_missing(milestone: Milestone) -> CourseModule | None:
    """The first module the milestone needs that is still the skeleton's stub."""
    return next((m for m in needed_modules(milestone) if module_origin(m) == "stub"), None)


def records_dir() -> Path:
    """Where milestone runs leave their result: beside the overlay (``~/.tinytorch/milestones``)."""
    return overlay_path().parent / "milestones"


def record_milestone(name: str, passed: bool) -> None:
    """Remember a milestone run's result for ``tinytorch.status`` (best effort: a read-only home only loses it)."""
    with contextlib.suppress(OSError):
        records_dir().mkdir(parents=True, exist_ok=True)
        (records_dir() / f"{name}.json").write_text(json.dumps({"passed": passed, "time": time.time()}))


def milestone_result(name: str) -> bool | None:
    """True or False for the last recorded run, None when it never ran (or the record is unreadable)."""
    try:
        return bool(json.loads((records_dir() / f"{name}.json").read_text())["passed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def module_rows() -> list[tuple[CourseModule, str, int, int]]:
    """(module, origin, tests passed, tests run) for every module, its visible tests run quietly."""
    rows = []
    for module in course_modules().values():
        kind = module_origin(module)
        with contextlib.redirect_stdout(io.StringIO()):
            passed, failed, _, _ = run_module(module.stem, out=io.StringIO())
        rows.append((module, kind, passed, passed + failed))
    return rows


def next_step(rows: list[tuple[CourseModule, str, int, int]]) -> str:
    for module, kind, passed, total in rows:
        if kind == "stub":
            return (f"finish module {module.slug}: fill in {module.slug}.ipynb and run its last cell to export it, "
                    f"then python -m tinytorch.check {module.number}")
        if passed < total:
            return f"fix module {module.slug}: python -m tinytorch.check {module.number} shows what fails"
    for milestone in MILESTONES:
        if not milestone_result(milestone.name):
            return f"run the milestone: python -m course.milestones.{milestone.name}"
    return "every module and milestone is done"


def report() -> str:
    rows = module_rows()
    labels = {"export": "exported", "stub": "not exported", "reference": "reference"}
    lines = ["module                exported?      visible tests"]
    for module, kind, passed, total in rows:
        tests = f"{passed}/{total} pass" if kind != "stub" else "-"
        lines.append(f"  {module.slug:20s}{labels[kind]:15s}{tests}")
    lines.append("milestone                                    status")
    for milestone in MILESTONES:
        missing = first_missing(milestone)
        result = milestone_result(milestone.name)
        if missing is not None:
            state = f"locked: export module {missing.slug} first"
        else:
            state = {None: "unlocked, not run yet", True: "passed", False: "unlocked, last run failed"}[result]
        lines.append(f"  {milestone.name:10s} {milestone.title:32s} {state}")
    lines.append(f"next step: {next_step(rows)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m tinytorch.status", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
