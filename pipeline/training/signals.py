"""Stopping on a signal: SIGINT (Ctrl-C) or SIGTERM (a cluster scheduler's pre-emption) asks the training loop to
stop at the next optimizer-step boundary, after a checkpoint; a second signal stops at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import torch
from accelerate import Accelerator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """While active, remembers the first stop signal received instead of dying of it."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt  # asked twice: stop now
        self.received = number

    def agreed(self, accelerator: Accelerator) -> int | None:
        """The signal some process received, agreed by all processes (a checkpoint needs every one of them)."""
        number = self.received or 0
        if accelerator.num_processes > 1:
            number = int(accelerator.reduce(torch.tensor(number, device=accelerator.device), reduction="max").item())
        return number or None
