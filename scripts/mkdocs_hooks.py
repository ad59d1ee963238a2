"""MkDocs hook: the recipe reference page is generated from the schema at build time, so it is never stale."""

from __future__ import annotations

from typing import Any

MARKER = "<!-- recipe-reference -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from pipeline.experiment.reference import recipe_reference

    return markdown.replace(MARKER, recipe_reference())
