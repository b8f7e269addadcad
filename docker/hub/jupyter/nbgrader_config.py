"""nbgrader, hub side (the formgrader service and TAs' commands in the hub container)."""
import os

from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821 (provided by the config loader)
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
c.Authenticator.plugin_class = JupyterHubAuthPlugin
# Collect only submissions owned by the student they name (see tinytorch_exchange.py).
c.ExchangeFactory.collect = "tinytorch_exchange.OwnerCheckedExchangeCollect"
c.CollectApp.check_owner = True
