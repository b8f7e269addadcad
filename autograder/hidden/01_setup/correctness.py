"""Module 01 (setup), hidden correctness: the cost predictions on shapes and dtypes the visible tests skip,
the profiler's baseline and nesting, measure's repeats, and the test runner on tests that fail in other ways."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "01_setup correctness"
kind = "correctness"


@test_case(name="test_expected_bytes_edge_shapes", points=1)
@same_as_reference()
@probe
def byte_counts(tt):
    """expected_bytes for empty, 0-d, and non-float32 arrays."""
    from tinytorch.profiler import expected_bytes
    return [expected_bytes(shape, dtype) for shape, dtype in
            [((3, 0, 5), np.float32), ((7,), np.float64), ((2, 3, 4), np.int8), ((), np.float32), ((1000, 1000), np.float16)]]


@test_case(name="test_matmul_flops_edge_shapes", points=1)
@same_as_reference()
@probe
def flop_counts(tt):
    """matmul_flops for 1x1, skinny and outer-product shapes."""
    from tinytorch.profiler import matmul_flops
    return [matmul_flops(*nkm) for nkm in [(1, 1, 1), (3, 5, 7), (1000, 1, 1000), (1, 4096, 1)]]


@test_case(name="test_profile_nested_blocks", points=2)
@same_as_reference()
@probe
def nested_profiles(tt):
    """Two nested Profile blocks: each reports its own peak above its own baseline, and tracing stops with the outer one."""
    import tracemalloc
    from tinytorch.profiler import Profile
    with Profile("outer") as outer:
        kept = np.ones(500_000, dtype=np.float64)                  # 4 MB, still alive when the inner block starts
        with Profile("inner") as inner:
            np.ones(125_000, dtype=np.float64)                     # 1 MB, freed at once
        inner_tracing = tracemalloc.is_tracing()
    del kept
    return {"outer peak between 4 and 6 MB": 4_000_000 <= outer.peak_bytes < 6_000_000,
            "inner peak between 1 and 2 MB": 1_000_000 <= inner.peak_bytes < 2_000_000,
            "still tracing after the inner block": inner_tracing,
            "tracing stopped after the outer block": not tracemalloc.is_tracing(),
            "times are positive": outer.seconds > 0 and inner.seconds > 0 and outer.seconds >= inner.seconds}


@test_case(name="test_measure_keeps_the_best_time_and_the_first_result", points=2)
@same_as_reference()
@probe
def measured(tt):
    """measure with repeat=5: five calls with the arguments given, the first call's result, the fastest run's time."""
    import time
    from tinytorch.profiler import measure
    delays = [0.2, 0.002, 0.1, 0.1, 0.1]  # gaps a busy machine cannot close; the mean (0.1) and median fail
    calls = []

    def slow_then_fast(tag, extra=""):
        calls.append(tag + extra)
        time.sleep(delays[len(calls) - 1])
        return len(calls)

    m = measure(slow_then_fast, "x", repeat=5, extra="!")
    return {"calls": calls, "result": m.result, "label": m.label,
            "best time is the 2 ms run": 0.002 <= m.seconds < 0.06}


@test_case(name="test_runner_keeps_going_and_names_each_error", points=2)
@same_as_reference()
@probe
def runner_outcomes(tt):
    """run_tests on tests that pass, fail an assert without a message, divide by zero and raise a custom error."""
    from tinytorch.profiler import find_tests, run_tests

    class Broken(Exception):
        pass

    def fine():
        return "a returned value is not a failure"

    def bare_assert():
        assert [] == [0]

    def divide():
        return 1 / 0

    def custom():
        raise Broken("the widget is off")

    namespace = {"test_z": fine, "test_bare": bare_assert, "not_a_test": divide, "test_div": divide,
                 "test_custom": custom, "test_number": 3, "TEST_upper": fine}
    results = run_tests(find_tests(namespace))
    return [(r.name, r.passed, r.error) for r in results]
