"""The course: one jupytext source per module, the build that turns them into
the tinytorch package and notebooks, and the milestones."""
