"""The autograder: hidden tests per module, run by Otter in hardened containers, exported to gradebooks.

    autograder grade ASSIGNMENT        (or python -m autograder grade ...): see autograder/README.md
"""
