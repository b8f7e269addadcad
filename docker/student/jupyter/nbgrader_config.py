"""nbgrader, student side: the shared exchange and the hub's groups.

The exchange is mounted by the hub at the path below; which courses a student
sees comes from their hub groups (nbgrader-<course_id>) through the hub API.
"""
import os

from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821 (provided by the config loader)
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
c.Authenticator.plugin_class = JupyterHubAuthPlugin
