"""What every recipe section shares: unknown keys are errors, and paths are checked to exist."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pipeline.paths import PKG_SCHEME, resolve_local_path

# Bounds that keep values inside what the libraries accept (NumPy seeds are 32-bit) or can allocate.
MAX_SEED = 2**32 - 1
MAX_SIZE = 1_000_000  # batch sizes, lengths, table rows


class Strict(BaseModel):
    """Base for every recipe section: unknown keys are errors, and non-finite numbers (inf, nan) are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def existing_path(value: str, kind: str | None = None) -> str:
    """Check that a local or pkg:// path exists (and is a `file` or a `folder`, when `kind` says); return the value
    as written (recipes stay portable)."""
    path = resolve_local_path(value)
    if not path.exists():
        raise ValueError(
            f"'{value}' does not exist" + (f" (resolved to {path})" if value.startswith(PKG_SCHEME) else "")
        )
    if kind == "file" and not path.is_file():
        raise ValueError(f"'{value}' is a folder, not a file")
    if kind == "folder" and not path.is_dir():
        raise ValueError(f"'{value}' is not a folder")
    return value
