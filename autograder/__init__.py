"""The autograder: everything that talks to nbgrader and to the grading containers.

    autograder grade ASSIGNMENT        grade (visible and hidden tests, in containers), gradebooks, feedback
    autograder course [DIR]            the nbgrader course directory, built from course/
    autograder list                    the modules with hidden tests and their points

(also ``python -m autograder ...``); see autograder/README.md for the files and how a submission is graded.
"""
