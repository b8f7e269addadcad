"""Jupyter server settings for the formgrader service that runs in the hub image.

JupyterLab shows nbgrader's formgrader in an iframe. Current JupyterHub and
jupyter_server send a Content-Security-Policy whose frame-ancestors blanks that
frame unless it names the page's origin: the hub passes its public origin in
TINYTORCH_FRAME_ANCESTORS.
"""
import os

c = get_config()  # noqa: F821
ancestors = os.environ.get("TINYTORCH_FRAME_ANCESTORS", "'self'")
c.ServerApp.tornado_settings = {
    "headers": {"Content-Security-Policy": f"frame-ancestors {ancestors}"},
}
