"""Writing files so that a reader never sees half of one: everything is written under a hidden `.NAME.partial` name
beside its target and renamed into place (an atomic replace on one file system)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pipeline.errors import PipelineError


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


def open_to_append(path: Path) -> IO[str]:
    """`path` opened to append text, never through a link (a received run folder's `library.log` or `log.jsonl`
    that links to a file elsewhere must not be written): an `OSError` (ELOOP) where it is one."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "a", encoding="utf-8")


def refuse_links(folder: Path, names: tuple[str, ...], field: str | None = None) -> None:
    """One line where a file the product appends to in `folder` is a link (appending would write through it)."""
    for name in names:
        if (folder / name).is_symlink():
            raise PipelineError(
                f"'{folder / name}' is a link; a run appends to this file and will not write through a link "
                "(remove the link)",
                field=field,
            )


def replace_folder(partial: Path, final: Path) -> None:
    """Put an assembled folder in place of `final`; an earlier `final` is kept (as `.NAME.old`) until the new one is
    there, so an interruption leaves the old folder or the new one, never neither."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    partial.rename(final)
    shutil.rmtree(old, ignore_errors=True)


DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "the file system is read-only"}  # fmt: skip
# How the libraries that write tensors (torch's zip writer, safetensors) report a full disk, when they do not
# pass the OSError on.
DISK_WORDS = {"No space left on device": errno.ENOSPC, "StorageFull": errno.ENOSPC,
              "Read-only file system": errno.EROFS}  # fmt: skip
LOW_SPACE = 1 << 20  # bytes: less than this free beside a failed write means the disk was full


def disk_failure(error: BaseException, folder: Path | None = None) -> str | None:
    """One line for an error that means the disk would not take what was written (None for any other error):
    by its errno, its words, or (for a write into `folder`) the space left there."""
    code = getattr(error, "errno", None)
    if code not in DISK_ERRORS:
        code = next((number for words, number in DISK_WORDS.items() if words in str(error)), None)
    if code is None and folder is not None:
        try:
            code = errno.ENOSPC if shutil.disk_usage(folder).free < LOW_SPACE else None
        except OSError:
            code = None
    if code is None:
        return None
    where = f" ({error.filename})" if getattr(error, "filename", None) else f" in {folder}" if folder else ""
    return (
        f"cannot write{where}: {DISK_ERRORS[code]}; the files written before (and the last whole checkpoint) are "
        "kept: free space, then continue with --resume"
    )
