"""A strict Content-Security-Policy on the formgrader's submission view (a Jupyter server extension).

The formgrader (nbgrader 0.9.6) shows a student's notebook as nbconvert HTML on the hub's origin, in
the browser of a TA or the admin. Sanitising that HTML (nbgrader_config.py in safe_html/) is the first
defence; this is the second: the page may only run the scripts its template wrote, each with a nonce
fresh for the response (templates/tinytorch_formgrade), load nothing from another origin, and submit
no form. Whatever markup a student gets through, no script of theirs runs and no request leaves.

nbgrader's SubmissionHandler renders with the exporter in the server's settings; here it gets one on
our template (which extends nbgrader's ``formgrade``) and the nonce in its resources. The rest of the
service (JupyterLab, the formgrader's other pages) keeps the service-wide policy of
jupyter_server_config.py. tests/test_deploy.py opens a hostile submission in Chromium.
"""
import base64
import copy
import inspect
import os
import secrets

from nbgrader.server_extensions.formgrader.handlers import SubmissionHandler, template_path

TEMPLATE = "tinytorch_formgrade"


def submission_policy(nonce: str, frame_ancestors: str) -> str:
    return "; ".join([
        "default-src 'none'",
        f"script-src 'nonce-{nonce}'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        f"frame-ancestors {frame_ancestors}",
    ])


class _NoncedExporter:
    """The exporter SubmissionHandler calls, rendering with our template and this response's nonce."""

    def __init__(self, exporter, nonce: str):
        self.exporter, self.nonce = exporter, nonce

    def from_filename(self, filename, resources=None, **kwargs):
        resources = {**(resources or {}), "csp_nonce": self.nonce}
        return self.exporter.from_filename(filename, resources=resources, **kwargs)


def _submission_exporter(settings):
    exporter = settings.get("tinytorch_submission_exporter")
    if exporter is None:
        nbgrader_exporter = settings["nbgrader_exporter"]
        # in the config, not set afterwards: nbconvert works out its template paths once, at creation
        config = copy.deepcopy(nbgrader_exporter.config)
        config.HTMLExporter.template_name = TEMPLATE
        # ours extends 'formgrade/index.html.j2', found from nbgrader's template folder
        config.HTMLExporter.extra_template_paths = [*nbgrader_exporter.extra_template_paths, template_path]
        exporter = type(nbgrader_exporter)(config=config)
        settings["tinytorch_submission_exporter"] = exporter
    return exporter


_nbgrader_get = SubmissionHandler.get


async def _get(self, submission_id):
    self._tinytorch_nonce = base64.b64encode(secrets.token_bytes(18)).decode("ascii")
    result = _nbgrader_get(self, submission_id)
    if inspect.isawaitable(result):
        await result
    if not self._finished:  # set last: nbgrader clears the headers on its 404 page
        ancestors = os.environ.get("TINYTORCH_FRAME_ANCESTORS", "'self'")
        self.set_header("Content-Security-Policy", submission_policy(self._tinytorch_nonce, ancestors))


def _exporter(self):
    return _NoncedExporter(_submission_exporter(self.settings), self._tinytorch_nonce)


def _jupyter_server_extension_points():
    return [{"module": "tinytorch_formgrader_csp"}]


def _load_jupyter_server_extension(serverapp):
    SubmissionHandler.get = _get
    SubmissionHandler.exporter = property(_exporter)
    serverapp.log.info("tinytorch: strict Content-Security-Policy on the formgrader's submission view")
