"""Build everything that is generated from the course sources (``course/NN_name/NN_name.py``).

One job per file, imports pointing down this list:

    sources.py    where the modules are; reading one: its cells, markers, solution regions
    package.py    tinytorch/<target>.py and tinytorch/checks/test_NN_name.py, and their drift
    comparisons.py  tinytorch/comparisons.json: each module's PyTorch comparison as printed with PyTorch,
                  shown where PyTorch is missing; recorded by running the notebooks, stale when a cell changed
    skeleton.py   the student package: solutions stubbed, the overlay hook, the milestones beside it
    leaks.py      nothing students get holds a solution, a mark scheme or a hidden test
    __main__.py   the command line (python -m course.build --help)

The nbgrader course directory built from these sources is the autograder's (autograder/coursedir.py):
the course build knows nothing of nbgrader's folders, the gradebook or the hidden tests.
"""
