"""One writer per folder: an advisory lock (`flock`) on a `.lock` file inside a run or sweep folder, held while a
command writes there. The kernel drops the lock when its process ends, however it ends (SIGKILL included), so a
lock left by a dead process never blocks; the file keeps the holder's description for the next one to read.

Advisory: it excludes our own commands (train, resume, eval, diagnose, sweep), not other programs; and on a network
file system without `flock` support it may not hold (see docs/guarantees.md).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


def holder_of(folder: Path) -> str:
    """What the lock file says of its holder (or that it says nothing)."""
    try:
        fd = open_lock(folder, create=False)
    except (OSError, PipelineError):
        return "another process"
    with os.fdopen(fd, "rb") as handle:
        return handle.read(1000).decode("utf-8", errors="replace").strip() or "another process"


def open_lock(folder: Path, create: bool = True) -> int:
    """The lock file's descriptor, opened without following a link: a `.lock` that is a symbolic link (to a file
    outside the folder, which would be truncated) or not a plain file is refused with one line."""
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | (os.O_CREAT if create else 0), 0o644)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        raise PipelineError(f"'{path}' is a symbolic link, not a lock of ours; remove it, then try again") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PipelineError(f"'{path}' is not a plain file, not a lock of ours; remove it, then try again")
    return fd


def try_lock(folder: Path) -> int | None:
    """The lock's file descriptor, now held by this process; None when another process holds it."""
    fd = open_lock(folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    command = " ".join(os.path.basename(arg) if i == 0 else arg for i, arg in enumerate(sys.argv[:3]))
    os.write(fd, f"process {os.getpid()} on {socket.gethostname()} ({command})\n".encode())
    return fd


@contextlib.contextmanager
def folder_lock(folder: Path, field: str = "output_dir") -> Iterator[None]:
    """Hold `folder`'s lock while the block runs (the folder must exist); one line naming the holder when another
    process has it."""
    try:
        fd = try_lock(folder)
    except OSError as error:
        raise PipelineError(f"cannot lock '{folder}' ({error.strerror or error})", field=field) from None
    except PipelineError as error:
        raise PipelineError(str(error), field=field) from None
    if fd is None:
        raise PipelineError(
            f"'{folder}' is in use by {holder_of(folder)}; wait for it to end (or stop it), then try again",
            field=field,
        )
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def wait_until_free(folder: Path, timeout_s: float) -> bool:
    """Wait (up to `timeout_s`) until no process holds `folder`'s lock; True when free (or never locked)."""
    deadline = time.monotonic() + timeout_s
    while (folder / LOCK_NAME).exists() or (folder / LOCK_NAME).is_symlink():
        fd = try_lock(folder)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@contextlib.contextmanager
def reading_lock(folder: Path, field: str = "run") -> Iterator[None]:
    """For a command that only reads a run folder (`pipeline eval` without writing into it): the folder's lock while
    it reads, so no run trains or rewrites it meanwhile; a folder this user cannot write to, where no command of ours
    can write either, is read without it (a `.lock` could not be made there)."""
    if not os.access(folder, os.W_OK):
        log.info("%s is read-only: read without its lock (no writer can be in it)", folder)
        yield
        return
    with folder_lock(folder, field):
        yield
