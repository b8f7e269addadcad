"""nbgrader, hub side (the formgrader service and TAs' commands in the hub container)."""
import os

c = get_config()  # noqa: F821 (provided by the config loader)
# The hub sets it (hub_config.py: nbgrader.exchange_root, the one place of that path); a course
# directory's own nbgrader_config.py sets it too (autograder/coursedir.py).
if "NBGRADER_EXCHANGE_ROOT" in os.environ:
    c.Exchange.root = os.environ["NBGRADER_EXCHANGE_ROOT"]
# nbgrader's JupyterHub plugin (courses from hub groups), which knows the formgrader's own course.
c.Authenticator.plugin_class = "tinytorch_exchange.FormgraderAuthPlugin"
# Collect only submissions owned by the student they name (see tinytorch_exchange.py).
c.ExchangeFactory.collect = "tinytorch_exchange.OwnerCheckedExchangeCollect"
c.ExchangeCollect.check_owner = True
