"""Runs of a local sweep forked from a process that imported the heavy libraries once (a fork server).

A `pipeline train` process spends seconds importing torch, transformers, datasets and the package before it reads
its recipe; in a sweep of short runs that is a large share of each run. The server imports them once, then forks
one child per run: each run is still its own process (a crash, a kill or a leak stays in it; its random state is
seeded by its recipe; the early-stopping rule still stops it with SIGTERM), with its own environment, threads and
stderr file, and it runs `pipeline.cli.main` as `python -m pipeline train ...` would. The server has run no
computation (no thread pool, no CUDA) when it forks, which is what makes the fork safe.

Protocol (JSON lines): the sweep writes `{"argv", "env", "stderr"}` to the server's stdin; the server answers
`{"pid": N}` when the child started and `{"pid": N, "code": C}` when it ended (C as `Popen.returncode`: negative
for a signal). Linux only (`wanted`): elsewhere runs are fresh processes.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import runpy
import select
import signal
import subprocess
import sys
import threading
from typing import Any, TextIO

from pipeline.errors import PipelineError

PRELOADED = (
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "pipeline.cli",  # the package the run executes, as `python -m pipeline` would (`runpy`)
    "pipeline.training.run",
    "pipeline.training.final",
    "pipeline.experiment.build",
    "pipeline.evaluation.plots",
)
START_TIMEOUT_S = 120  # the server imports the libraries before it answers its first request
GONE = -1  # what the reader passes on when the server has ended


def wanted() -> bool:
    """Forking a process that imported these libraries is safe on Linux (not on macOS, not on Windows); setting
    `EMBEDLAB_FRESH_PROCESSES=1` starts every run as a fresh interpreter instead (to compare, or to debug)."""
    fresh = os.environ.get("EMBEDLAB_FRESH_PROCESSES", "") not in ("", "0")
    return sys.platform.startswith("linux") and hasattr(os, "fork") and not fresh


def die_with_parent() -> None:
    """In the child: get SIGTERM when the thread that started it ends (Linux), so no run outlives its sweep."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_child(request: dict[str, Any]) -> None:
    """In the forked child: become the run (environment, threads, standard streams, argv), run it, exit."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter (the server ignores it)
    os.environ.clear()
    os.environ.update(request["env"])
    import torch

    # The server's torch read its thread count at import; the run's comes from its environment, as a fresh process's.
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    null = os.open(os.devnull, os.O_RDWR)
    errors = os.open(request["stderr"], os.O_WRONLY | os.O_APPEND)
    for source, target in ((null, 0), (null, 1), (errors, 2)):
        os.dup2(source, target)
    sys.argv = ["-m", *request["argv"]]  # as `python -m pipeline ...` sees them (runpy sets the program name)
    code = 1
    try:
        runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(requests: int, replies: TextIO) -> None:
    """The server loop: import, then fork a child per request line read from the file descriptor `requests`, and
    report its start and its end, until the sweep closes the requests and every child has ended."""
    # Ctrl-C reaches the sweep, the server and the runs alike: the runs stop themselves and the sweep ends the
    # server, which must not die first with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in PRELOADED:
        importlib.import_module(name)
    importlib.import_module("pipeline.evaluation.plots").pyplot()  # matplotlib, on the Agg backend

    def answer(reply: dict[str, Any]) -> None:
        replies.write(json.dumps(reply) + "\n")
        replies.flush()

    children: set[int] = set()
    pending, open_ = b"", True
    while open_ or children:
        # Unbuffered reads: a buffered reader could hold a second request while `select` waits for more.
        if open_ and select.select([requests], [], [], 0.05)[0]:
            chunk = os.read(requests, 65536)
            open_, pending = bool(chunk), pending + chunk
        elif not open_:
            select.select([], [], [], 0.05)
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            pid = os.fork()
            if pid == 0:
                run_child(json.loads(line))
            children.add(pid)
            answer({"pid": pid})
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                answer({"pid": pid, "code": os.waitstatus_to_exitcode(status)})


class ForkServer:
    """The sweep's side: starts the server, asks it for runs, and keeps what it answers."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "pipeline.sweeps.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )
        self.started: queue.Queue[int] = queue.Queue()
        self.codes: dict[int, int] = {}
        self.ended = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            reply = json.loads(line)
            if "code" in reply:
                with self.ended:
                    self.codes[reply["pid"]] = reply["code"]
                    self.ended.notify_all()
            else:
                self.started.put(reply["pid"])
        self.started.put(GONE)
        with self.ended:  # the server is gone: its children with it (they die with their parent)
            self.ended.notify_all()

    def start(self, argv: list[str], env: dict[str, str], stderr: str) -> ForkedRun:
        """Fork a run of `pipeline ARGV...` with environment `env`, its stderr appended to the file `stderr`."""
        try:
            self.process.stdin.write(json.dumps({"argv": argv, "env": env, "stderr": stderr}) + "\n")  # type: ignore[union-attr]
            self.process.stdin.flush()  # type: ignore[union-attr]
            pid = self.started.get(timeout=START_TIMEOUT_S)
        except (BrokenPipeError, queue.Empty):
            pid = GONE
        if pid == GONE:
            self.started.put(GONE)  # for the next caller too
            raise PipelineError(
                f"the sweep's fork server ended (exit code {self.process.poll()}); EMBEDLAB_FRESH_PROCESSES=1 starts "
                "each run as a fresh process instead"
            )
        return ForkedRun(self, pid)

    def close(self) -> None:
        """No more runs: the server ends once its children have."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.wait()


class ForkedRun:
    """One forked run, as much of `subprocess.Popen` as the sweep uses: `poll`, `wait`, `send_signal`, `returncode`."""

    def __init__(self, server: ForkServer, pid: int):
        self.server, self.pid, self.returncode = server, pid, None

    def poll(self) -> int | None:
        with self.server.ended:
            self.returncode = self.server.codes.get(self.pid, self._lost())
        return self.returncode

    def wait(self) -> int:
        with self.server.ended:
            self.server.ended.wait_for(lambda: self.pid in self.server.codes or self._lost() is not None)
            self.returncode = self.server.codes.get(self.pid, self._lost())
        return self.returncode  # type: ignore[return-value]

    def _lost(self) -> int | None:
        """-SIGKILL for a run whose server died before telling how it ended (its children died with it)."""
        return -signal.SIGKILL if self.server.process.poll() is not None else None

    def send_signal(self, number: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, number)


if __name__ == "__main__":
    serve(sys.stdin.fileno(), sys.stdout)
