"""Jupyter server settings for the formgrader service that runs in the hub image.

JupyterLab shows nbgrader's formgrader in an iframe. Current JupyterHub and
jupyter_server send a Content-Security-Policy whose frame-ancestors blanks that
frame unless it names the page's origin: the hub passes its public origin in
TINYTORCH_FRAME_ANCESTORS.

The formgrader shows students' notebooks to TAs and the admin on the hub's origin. Every page of
the service may send and load only to and from the hub's origin (plus data:/blob: images), embed
no plugins, and post forms only there: a script that got in could not send anything elsewhere.
JupyterLab's own pages need inline and eval'd script, so scripts are not restricted here; the page
that shows a submission is (tinytorch_formgrader_csp: only the template's scripts, by nonce).
"""
import os

c = get_config()  # noqa: F821
ancestors = os.environ.get("TINYTORCH_FRAME_ANCESTORS", "'self'")
policy = "; ".join([
    f"frame-ancestors {ancestors}",
    "connect-src 'self'",
    "img-src 'self' data: blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
])
c.ServerApp.tornado_settings = {
    "headers": {"Content-Security-Policy": policy},
}
