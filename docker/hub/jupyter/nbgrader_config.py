"""nbgrader, hub side (the formgrader service and TAs' commands in the hub container)."""
import os

from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821 (provided by the config loader)
# The hub sets it (hub_config.py: nbgrader.exchange_root, the one place of that path); a course
# directory's own nbgrader_config.py sets it too (autograder/coursedir.py).
if "NBGRADER_EXCHANGE_ROOT" in os.environ:
    c.Exchange.root = os.environ["NBGRADER_EXCHANGE_ROOT"]
c.Authenticator.plugin_class = JupyterHubAuthPlugin
# Collect only submissions owned by the student they name (see tinytorch_exchange.py).
c.ExchangeFactory.collect = "tinytorch_exchange.OwnerCheckedExchangeCollect"
c.CollectApp.check_owner = True
