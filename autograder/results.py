"""The autograder's own record of a grading: one JSON file per submission (atomic), and Otter's CSV.

``autograder/<assignment>/<student>.json`` holds what the grading container returned (visible and
hidden tests, messages, notes) with the digest of what was graded; a re-run skips a submission
whose digest is unchanged. ``autograder/<assignment>/final_grades.csv`` is Otter's own export.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a crash) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
            # mkstemp makes 0600 files; these are the course's files like any other (feedback pages are
            # copied to the exchange with their mode, and students must be able to read their own)
            os.fchmod(f.fileno(), 0o644)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def results_dir(course_root: Path, assignment: str) -> Path:
    return Path(course_root) / "autograder" / assignment


def read_results(course_root: Path, assignment: str) -> dict[str, dict]:
    """Student -> their stored result for the assignment."""
    folder = results_dir(course_root, assignment)
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out[path.stem] = json.loads(path.read_text())
        except ValueError:
            continue  # never written by us half-way (atomic), but be tolerant of hand edits
    return out


def final_grades_csv(results: dict[str, dict], path: Path) -> Path:
    """Otter's own ``final_grades.csv`` (``otter.grade.utils.merge_scores_to_df``), one row per submission."""
    from otter.grade.utils import merge_scores_to_df
    from otter.test_files import GradingResults

    scores = []
    for student, result in sorted(results.items()):
        if result.get("status") == "graded":
            grading = GradingResults.from_ottr_json(json.dumps(result["otter"]))
        else:
            grading = GradingResults.without_results(RuntimeError(result.get("message", "not graded")))
        grading.file = student
        scores.append(grading)
    if not scores:
        return path
    frame = merge_scores_to_df(scores)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, frame.to_csv(index=False))
    return path
