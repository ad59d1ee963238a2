"""docs/index.md is the README as the docs site shows it: the same text, with links into `docs/` made relative to
it. Written from README.md by this script (a test checks that the two agree), never edited by hand.

    python3 scripts/docs_index.py          # rewrite docs/index.md
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- Generated from README.md by scripts/docs_index.py: edit the README, then run the script. -->\n"
READ_ON = "The documentation is a MkDocs site in `docs/` (`.venv/bin/mkdocs serve`, or read the Markdown files):"


def docs_index(readme: str) -> str:
    """The README's text with `](docs/x.md)` links as `](x.md)` and its pointer to the docs as "These pages:"."""
    return HEADER + readme.replace("](docs/", "](").replace(READ_ON, "These pages:")


if __name__ == "__main__":
    (ROOT / "docs" / "index.md").write_text(docs_index((ROOT / "README.md").read_text(encoding="utf-8")))
