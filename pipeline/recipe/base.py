"""What every recipe section shares: unknown keys are errors, and paths are checked to exist."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pipeline.paths import PKG_SCHEME, resolve_local_path


class Strict(BaseModel):
    """Base for every recipe section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def existing_path(value: str) -> str:
    """Check that a local or pkg:// path exists; return the value as written (recipes stay portable)."""
    path = resolve_local_path(value)
    if not path.exists():
        raise ValueError(f"'{value}' does not exist" + (f" (resolved to {path})" if value.startswith(PKG_SCHEME) else ""))
    return value
