"""Visible tests of each module, generated from the notebooks' grade cells by `python -m course.build export`."""
