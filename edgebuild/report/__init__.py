"""Build reports: report.json (machine-readable) and report.html (for people, with plots).

Importing this package is cheap: jinja2 and matplotlib are imported when a page is rendered.
"""

from edgebuild.report.html import render_html
from edgebuild.report.json_io import write_json

__all__ = ["render_html", "write_json"]
