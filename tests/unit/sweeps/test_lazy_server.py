"""A sweep starts its fork server only when a run needs training: a sweep whose runs are all finished (asked again
with the same seeds) imports and forks nothing."""

from __future__ import annotations

from pipeline.sweeps import forkserver
from pipeline.sweeps.runner import LazyServer


def test_the_fork_server_starts_when_the_first_run_needs_it(monkeypatch):
    started = []
    monkeypatch.setattr(forkserver, "ForkServer", lambda: started.append("server") or "server")
    lazy = LazyServer(True)
    assert lazy.started is None and started == []  # nothing yet: every run may be finished already
    assert lazy.get() == "server" and lazy.get() == "server" and started == ["server"]  # once, then shared
    assert LazyServer(False).get() is None  # EMBEDLAB_FRESH_PROCESSES=1, or not Linux
