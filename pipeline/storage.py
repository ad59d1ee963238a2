"""Writing files so that a reader never sees half of one: everything is written under a hidden `.NAME.partial` name
beside its target and renamed into place (an atomic replace on one file system)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path


def partial_path(target: Path) -> Path:
    """The hidden name a file or folder is assembled under before it is renamed to `target`."""
    return target.with_name(f".{target.name}.partial")


def atomic_write(target: Path, write: Callable[[Path], object]) -> Path:
    """Call `write(path)` on the partial path, then rename it to `target`; returns `target`."""
    partial = partial_path(target)
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        if partial.is_file():
            partial.unlink()
    return target


def atomic_write_text(target: Path, text: str) -> Path:
    return atomic_write(target, lambda path: path.write_text(text, encoding="utf-8"))


def replace_folder(partial: Path, final: Path) -> None:
    """Put an assembled folder in place of `final`; an earlier `final` is kept (as `.NAME.old`) until the new one is
    there, so an interruption leaves the old folder or the new one, never neither."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    partial.rename(final)
    shutil.rmtree(old, ignore_errors=True)
