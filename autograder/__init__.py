"""The autograder: visible and hidden tests per module, run in hardened containers, exported to gradebooks.

    autograder grade ASSIGNMENT        (or python -m autograder grade ...): see autograder/README.md
"""
