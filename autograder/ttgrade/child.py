"""The student's process: import the submission's tinytorch, run ONE probe, send back what it returned.

Started by the grader process (ttgrade.parent) inside the grading container, once per probe:

    python -I -m ttgrade.child RESPONSE_FD      (the request, a pickle from the grader, on stdin)

Everything here is untrusted once the submission is imported: the submission may patch any module
in this process, exit, loop or crash.  That is fine, because this process only *answers*: values
are compared, and scores computed, in the grader process, which never imports student code.  What
this process measures for the grader (a tracemalloc peak) is taken with functions bound before the
submission is imported, and reported together with a check that tracemalloc was left alone.
"""
from __future__ import annotations

import builtins
import gc
import os
import pickle
import struct
import sys
import traceback
import tracemalloc
from typing import Any

import numpy as np

from . import wire

# Bound before any student code runs: replacing tracemalloc's attributes later does not change these.
_START, _STOP, _IS_TRACING = tracemalloc.start, tracemalloc.stop, tracemalloc.is_tracing
_GET_TRACED, _RESET_PEAK = tracemalloc.get_traced_memory, tracemalloc.reset_peak
_ORIGINALS = {name: getattr(tracemalloc, name) for name in
              ("start", "stop", "is_tracing", "get_traced_memory", "reset_peak", "clear_traces", "take_snapshot")}
_GC_COLLECT = gc.collect
# The builtins as they were: the probes (hidden and visible tests) run with this copy, so a submission that
# replaces getattr, isinstance or Exception in the builtins module changes nothing the tests look up.
_BUILTINS = dict(builtins.__dict__)
_WRITE, _EXIT = os.write, os._exit
TAMPERING: list[str] = []
RESPONSE_FD = -1  # set in main()


def tracemalloc_tampering() -> list[str]:
    """What the submission changed in tracemalloc (empty when nothing)."""
    import _tracemalloc
    found = [f"tracemalloc.{name} was replaced" for name, fn in _ORIGINALS.items() if getattr(tracemalloc, name, None) is not fn]
    found += [f"_tracemalloc.{name} was replaced" for name in ("start", "stop", "get_traced_memory", "reset_peak")
              if getattr(_tracemalloc, name, None) is not _ORIGINALS[name]]
    return found


def peak_bytes(fn) -> int:
    """The tracemalloc peak (bytes above what was allocated before) while ``fn()`` runs."""
    _GC_COLLECT()
    _WRITE(RESPONSE_FD, struct.pack(">Q", 0))  # tells the grader, which samples this process's memory, "now"
    was_tracing = _IS_TRACING()
    if not was_tracing:
        _START()
    _RESET_PEAK()
    before = _GET_TRACED()[0]
    fn()
    if not _IS_TRACING():
        TAMPERING.append("tracemalloc was stopped while the operation ran")
        return 0
    peak = _GET_TRACED()[1] - before
    if not was_tracing:
        _STOP()
    TAMPERING.extend(tracemalloc_tampering())
    return max(peak, 0)


def probe(fn):
    """Probes are plain functions here (the grader's decorator only marks which ones to ship)."""
    return fn


def describe_error(error: BaseException, stack: str) -> str:
    """The exception and the last line of the submission's package it came from (never the probe's code)."""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename.startswith(stack):
            where = f" (in {os.path.relpath(frame.filename, stack)}, line {frame.lineno}, in {frame.name})"
    text = str(error)
    if len(text) > 400:
        text = text[:400] + "..."
    return f"{type(error).__name__}: {text}{where}"


def send(fd: int, envelope: dict) -> None:
    try:
        data = wire.encode(envelope)
    except Exception as error:  # noqa: BLE001 - an unencodable result is the submission's problem
        data = wire.encode({"status": "error", "message": f"the result could not be sent back: {error}"})
    view = memoryview(struct.pack(">Q", len(data)) + data)
    while view:
        written = _WRITE(fd, view)
        view = view[written:]


def main() -> None:
    global RESPONSE_FD
    fd = RESPONSE_FD = int(sys.argv[1])
    request = pickle.load(sys.stdin.buffer)  # from the grader process: trusted
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    stack = request["stack"]
    sys.path.insert(0, stack)
    envelope: dict
    try:
        import tinytorch as tt
    except BaseException as error:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
        envelope = {"status": "import", "message": describe_error(error, stack)}
    else:
        namespace: dict[str, Any] = {"__builtins__": _BUILTINS, "__name__": "hidden_probes", "np": np,
                                     "peak_bytes": peak_bytes, "probe": probe}
        exec(compile(request["probes"], "<hidden test probes>", "exec"), namespace)
        try:
            value = namespace[request["probe"]](tt, *request["args"])
            envelope = {"status": "ok", "value": value, "tampering": TAMPERING + tracemalloc_tampering()}
        except BaseException as error:  # noqa: BLE001
            envelope = {"status": "error", "message": describe_error(error, stack)}
    send(fd, envelope)
    _EXIT(0)  # skip atexit handlers and finalizers the submission may have registered


if __name__ == "__main__":
    main()
