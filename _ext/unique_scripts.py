"""Emit each ``<script>`` of a page once.

sphinx-thebe adds its inline configuration script (``const THEBE_JS_URL = ...``) from a
read-phase event, and Sphinx ends up with two copies that its own de-duplication misses
(one with ``filename=None``, one with ``filename=''``). The second copy redeclares a
``const`` and throws a SyntaxError in the browser on every page. This keeps the first
script of each source file or inline body, in order.
"""

from __future__ import annotations

from typing import Any


def _unique_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        filename = getattr(script, "filename", None) or ""
        key = ("file", filename) if filename else ("body", getattr(script, "attributes", {}).get("body", ""))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _unique_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
