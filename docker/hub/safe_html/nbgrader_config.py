"""nbgrader's HTML of student notebooks is sanitised: the formgrader's submission view and feedback.

A student writes whatever they like in a markdown cell (or an output). nbconvert turns it into HTML,
and nbgrader's ``formgrade`` and ``feedback`` templates put the markdown in the page as it is: their
own ``markdowncell`` blocks skip the ``clean_html`` that ``HTMLExporter.sanitize_html`` adds to
nbconvert's templates. So ``sanitize_html`` alone covers outputs (HTML, markdown, SVG, JavaScript,
widgets) but not markdown cells. Every one of those templates pipes rendered markdown through
``strip_files_prefix``; here that filter also sanitises, and ``clean_html`` (outputs, raw cells)
keeps the same list of harmless tags. Anything else is shown escaped, as text, so the grader sees
what was submitted.

Loaded by nbgrader from a Jupyter config path: in the hub image (the formgrader service and nbgrader
commands there) from /opt/venv/etc/jupyter; on the host, deploy/grade.sh puts this folder on
JUPYTER_CONFIG_PATH for the feedback it generates. Self-contained on purpose (bleach and nbconvert
only), so that both can load it. tests/test_safe_html.py renders the payloads through it.
"""
import re

import bleach
from nbconvert.filters.strings import strip_files_prefix

SAFE_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "del",
    "details", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd",
    "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
SAFE_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})
# Code highlighting's classes (Pygments' short names, "highlight", "language-*"): not the formgrader's
# own ("score", "comment", "tabbable", ...), which its script looks up on the page.
HIGHLIGHT_CLASS = re.compile(r"^(highlight|hll|language-[\w+#.-]+|[a-z]{1,3}[0-9]?)$")


def _safe_attribute(tag: str, name: str, value: str) -> bool:
    """No event handlers, styles or ids; links to http(s)/mailto only; data: URLs only as images."""
    if name == "class":
        return tag in {"span", "code", "pre", "div"} and all(HIGHLIGHT_CLASS.match(c) for c in value.split())
    if tag == "a":
        return name in {"href", "title"} and not value.strip().lower().startswith("data:")
    if tag == "img":
        return name in {"alt", "title", "width", "height"} or (
            name == "src" and (not value.strip().lower().startswith("data:")
                               or value.strip().lower().startswith("data:image/")))
    if tag in {"td", "th"}:
        return name in {"colspan", "rowspan", "align"}
    return False


def safe_html(html) -> str:
    """``html`` with only SAFE_TAGS and safe attributes left as markup; everything else escaped."""
    html = html.decode() if isinstance(html, bytes) else str(html)
    return bleach.clean(html, tags=SAFE_TAGS, attributes=_safe_attribute, protocols=SAFE_PROTOCOLS,
                        strip=False, strip_comments=True)


def safe_markdown_html(html) -> str:
    """nbconvert's ``strip_files_prefix``, then ``safe_html`` (rendered markdown passes through here)."""
    return safe_html(strip_files_prefix(html))


c = get_config()  # noqa: F821 (provided by the config loader)
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {"strip_files_prefix": safe_markdown_html, "clean_html": safe_html}
