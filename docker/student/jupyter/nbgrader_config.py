"""nbgrader, student side: the shared exchange and the hub's groups.

The exchange is mounted by the hub at the path below; which courses a student
sees comes from their hub groups (nbgrader-<course_id>) through the hub API.
"""
import os

from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821 (provided by the config loader)
# The hub sets it (hub_config.py: nbgrader.exchange_root, the one place of that path); a course
# directory's own nbgrader_config.py sets it too (autograder/coursedir.py).
if "NBGRADER_EXCHANGE_ROOT" in os.environ:
    c.Exchange.root = os.environ["NBGRADER_EXCHANGE_ROOT"]
c.Authenticator.plugin_class = JupyterHubAuthPlugin
