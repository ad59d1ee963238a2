"""Cache entries under `EMBEDLAB_CACHE` (default ~/.cache/embedlab): converted GGUF checkpoints, trained vectors,
encoded splits, frozen-body features, the frozen encoder's mean vectors.

Each entry is a folder keyed by a hash of what it was made from. It is written aside (`.KEY.PID.partial`), sealed
with `entry.json` (every file's size and SHA-256), and renamed into place, so a reader sees a whole entry or none.
It is read only when every file still matches its seal, checked before any library parses it: an entry cut short or
edited is removed with one warning and made again, never trusted as it is (a flipped bit in a cached fastText model
would otherwise hang gensim); one from an older version, without a seal, is made again with an info line. The seal
names its entry's key, so an entry moved (or copied) under another key is damage too, as is a garbled seal or a link
inside the entry; an entry that is itself a link is refused in one line, and nothing behind it is touched. A
partial left by a process that died (SIGKILL while writing) is removed the next time that cache is written to.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.paths import file_digest

log = logging.getLogger(__name__)
SEAL = "entry.json"
UNSEALED = "no readable seal"
PARTIAL = re.compile(r"^\.(?P<key>.+)\.(?P<pid>\d+)\.partial$")


def _files(folder: Path) -> dict[str, Path]:
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink() and path.name != SEAL
    }


def seal(folder: Path, key: str) -> None:
    """Write the entry's seal: its key (the folder name it is renamed to), every file's size and SHA-256."""
    files = {name: {"size": path.stat().st_size, "sha256": file_digest(path)} for name, path in _files(folder).items()}
    (folder / SEAL).write_text(json.dumps({"key": key, "files": files}, indent=1) + "\n")


def damage(folder: Path) -> str | None:
    """What is wrong with a sealed entry (None: every file as it was written, under its own key); sizes first, so a
    truncated file is found without reading it."""
    if not (folder / SEAL).is_file() and not (folder / SEAL).is_symlink():
        return UNSEALED
    try:
        record = json.loads((folder / SEAL).read_text())
        sealed, key = record["files"], record.get("key")
        if not isinstance(sealed, dict) or not all(isinstance(entry, dict) for entry in sealed.values()):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{SEAL} is not a seal this version wrote"
    if key is None:  # a whole seal of the version before seals named their key: older, not damaged
        return UNSEALED
    if key != folder.name:
        return f"sealed as entry {str(key)[:16]}..., found under {folder.name[:16]}..."
    links = [path.name for path in folder.rglob("*") if path.is_symlink()]
    if links:
        return f"holds a link ({links[0]})"
    present = _files(folder)
    if set(present) != set(sealed):
        odd = sorted(set(present) ^ set(sealed))
        return f"files added or missing: {', '.join(odd[:3])}"
    for name, path in present.items():
        if path.stat().st_size != sealed[name].get("size"):
            return f"{name} changed size"
    for name, path in present.items():
        if file_digest(path) != sealed[name].get("sha256"):
            return f"{name} changed"
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def clean_stale_partials(parent: Path) -> None:
    """Remove the partial entries whose writer has died (a partial of a live process is left to it)."""
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        found = PARTIAL.match(entry.name)
        if found and int(found["pid"]) != os.getpid() and not _process_alive(int(found["pid"])):
            log.info("removing %s, left by a process that ended while writing it", entry)
            shutil.rmtree(entry, ignore_errors=True)


def usable(folder: Path, what: str) -> bool:
    """True when `folder` holds an intact entry. A damaged one is removed, with one warning, so that the caller
    makes it again."""
    if folder.is_symlink():
        raise PipelineError(
            f"cache entry {folder} is a link; the cache reads only folders it wrote: remove the link (or set "
            "EMBEDLAB_CACHE to another folder)"
        )
    if not folder.is_dir():
        return False
    problem = damage(folder)
    if problem is None:
        return True
    if problem == UNSEALED:  # written before entries were sealed: not damage, only unverifiable
        log.info("cache entry %s (%s) is from an older version: making it again", folder, what)
    else:
        log.warning("cache entry %s (%s) is damaged (%s): making it again", folder, what, problem)
    aside = folder.with_name(f".{folder.name}.{os.getpid()}.partial")  # a dead writer's partial, as far as any reader
    try:
        folder.rename(aside)
    except OSError:
        return False
    shutil.rmtree(aside, ignore_errors=True)
    return False


def write_entry(folder: Path, write: Callable[[Path], object], what: str) -> None:
    """Make the entry `folder`: `write(partial)` fills a partial folder, which is sealed and renamed into place.
    When another process put the same entry there first, its entry is kept. A cache folder that cannot be written
    is one line naming it."""
    partial = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    try:
        clean_stale_partials(folder.parent)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        write(partial)
        seal(partial, folder.name)
        try:
            os.replace(partial, folder)
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not folder.is_dir():
                raise
    except OSError as error:
        reason = error.strerror or str(error)
        raise PipelineError(
            f"cannot write the {what} cache in '{folder.parent}' ({reason}); free space there, or set EMBEDLAB_CACHE "
            "to a folder you can write"
        ) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
