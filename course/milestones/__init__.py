"""Course milestones: end-to-end programs built only from tinytorch, run as `python -m course.milestones.<name>`."""
