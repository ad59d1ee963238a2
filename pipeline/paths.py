"""Paths in recipes: local paths, `pkg://package/sub/path` (inside an installed package), or Hub ids; and checks
that an output file can be written before the work that fills it is done."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from pathlib import Path

from pipeline.errors import PipelineError

PKG_SCHEME = "pkg://"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_package_path(uri: str) -> Path:
    """Turn `pkg://name/sub/path` into a path inside the installed package `name`, without importing it.

    The package is located with `importlib.util.find_spec`, which reads no code of a top-level package.
    The result must stay inside the package folder (no `..` escapes).
    """
    rest = uri[len(PKG_SCHEME) :]
    package, _, sub_path = rest.partition("/")
    if not package.isidentifier():
        raise ValueError(f"'{uri}' must look like pkg://package_name/path/inside")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"package '{package}' is not installed (pip install it, or use a local path)")
    root = Path(next(iter(spec.submodule_search_locations))).resolve()
    target = (root / sub_path).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"'{uri}' points outside the package folder {root}")
    return target


def resolve_local_path(value: str) -> Path:
    """A recipe path as a local `Path` (pkg:// resolved, ~ expanded, relative to the working directory)."""
    if value.startswith(PKG_SCHEME):
        return resolve_package_path(value)
    return Path(value).expanduser()


def is_gguf(path: str) -> bool:
    """A llama.cpp GGUF file by its name (always a local file: the Hub is never asked for one)."""
    return path.lower().endswith(".gguf")


def looks_like_hub_id(value: str) -> bool:
    """True for `name` or `org/name` strings that are not an existing local path (a `.gguf` name is a file: the Hub
    is never asked for one)."""
    if value.startswith(PKG_SCHEME) or is_gguf(value):
        return False
    return bool(_HUB_ID.match(value)) and not Path(value).exists()


def resolve_model_path(value: str) -> str:
    """What `from_pretrained` should get: a local folder as a string, or the Hub id unchanged."""
    if looks_like_hub_id(value):
        return value
    return str(resolve_local_path(value))


def cache_root(kind: str) -> Path:
    """The folder of one kind of cache (`features`, `encoded`, `gguf`, `vectors`) under `EMBEDLAB_CACHE` (default
    ~/.cache/embedlab)."""
    return Path(os.environ.get("EMBEDLAB_CACHE", Path.home() / ".cache" / "embedlab")) / kind


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_output_file(path: Path, field: str = "--output") -> None:
    """Refuse an output file that cannot be written: a folder, a missing or non-folder parent, no permission."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise PipelineError(f"'{path}' is a folder; give a file name", field=field)
    if not parent.is_dir():
        raise PipelineError(f"'{parent}' is not an existing folder", field=field)
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PipelineError(f"cannot write '{path}' (permission denied)", field=field)
