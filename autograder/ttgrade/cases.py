"""A hidden test that compares one probe with the reference, declared on the probe itself.

    @test_case(name="test_sums_broadcast", points=2)
    @same_as_reference(A, B)
    @probe
    def sums(tt, a, b):
        \"\"\"(2, 1, 3) + (4, 1) broadcasts like NumPy (the first docstring line is what the feedback says the test checks).\"\"\"
        return (tt.Tensor(a) + tt.Tensor(b)).data

is the test ``def test_sums_broadcast(): same(sums, A, B)`` with that docstring,
written once instead of as a probe plus a test that only calls it.  Why it is spelled this way:

* ``@probe`` comes last (innermost): it marks the function whose source, without its decorators,
  is shipped to the student's process;
* the test's name is given to ``test_case`` and not as a ``def``, so that it stays in the grader
  process (the student's process receives the probe's source: its own name, docstring and body);
* ``autograder.hidden.points`` reads ``points`` from the ``test_case`` decorator without running the file.
"""
from __future__ import annotations

from .api import same


def same_as_reference(*args, **options):
    """Make probe ``fn`` the test ``same(fn, *args, **options)`` (``rtol``, ``atol``, ``timeout``)."""
    def declare(fn):
        def test():
            same(fn, *args, **options)
        # Not functools.wraps: Otter passes a test function its parameters by name, and this one takes none.
        test.__name__ = test.__qualname__ = fn.__name__
        test.__doc__ = fn.__doc__
        return test
    return declare
