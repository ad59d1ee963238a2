"""docs/index.md is generated from the README (scripts/docs_index.py), so the two cannot drift apart."""

from __future__ import annotations

import runpy
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_docs_index_is_the_readme_as_generated():
    docs_index = runpy.run_path(str(REPO / "scripts" / "docs_index.py"))["docs_index"]
    expected = docs_index((REPO / "README.md").read_text(encoding="utf-8"))
    assert (REPO / "docs" / "index.md").read_text(encoding="utf-8") == expected, "run python3 scripts/docs_index.py"
    assert "](docs/" not in expected
