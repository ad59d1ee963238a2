"""What this machine can hold: a size that cannot be allocated is refused with one line before it is tried (an
allocation past the memory the system has can get the process killed without a word)."""

from __future__ import annotations

import psutil

from pipeline.errors import PipelineError


def require_memory(size_bytes: int, what: str, field: str) -> None:
    """Refuse `what` when its `size_bytes` exceed the memory this machine has available now."""
    available = psutil.virtual_memory().available
    if size_bytes > available:
        raise PipelineError(
            f"{what} needs {size_bytes / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB of memory available",
            field=field,
        )
