"""What a command prints: its checks, the parameter table, one training bar, the evaluation lines, the run folder,
and real warnings once. The libraries' chatter (transformers' load reports, their progress bars, tokenizer notices)
goes to `library.log` in the run folder instead; `pipeline -v` puts everything on the console as the libraries
print it.

The libraries' records are held in memory until the run folder exists (the model loads before the folder is made),
then written there; a record at ERROR or above reaches the console as well.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import IO

from pipeline.storage import open_to_append

LIBRARY_LOG = "library.log"
# The loggers of the libraries a run imports; each library adds its own console handler on first import.
LIBRARIES = ("transformers", "datasets", "evaluate", "accelerate", "huggingface_hub", "torch", "filelock")
HELD_RECORDS = 20_000  # past this, held records are dropped (a command that never makes a run folder)


class ConsoleFormat(logging.Formatter):
    """`warning: ...` for warnings and errors, the bare message otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"{record.levelname.lower()}: {message}" if record.levelno >= logging.WARNING else message


class ConsoleHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (a test's capture, a redirected console), as
    `logging.lastResort` does, not to the stream of the moment it was made."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(ConsoleFormat())

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


class QuietFileHandler(logging.FileHandler):
    """A log file whose failures (its folder removed, a full disk) cost the record, never a printed traceback: a
    library's chatter is no reason to disturb a run. Opened without following a link (see `open_to_append`)."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass

    def _open(self) -> IO[str]:
        return open_to_append(Path(self.baseFilename))


class LibraryLog(logging.Handler):
    """Holds the libraries' records until `write_to` names the file, then writes them and every later one there."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.held: list[logging.LogRecord] = []
        self.file: logging.FileHandler | None = None
        self.console = ConsoleHandler()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.console.handle(record)
        if self.file is not None:
            self.file.handle(record)
        elif len(self.held) < HELD_RECORDS:
            self.held.append(record)

    def write_to(self, path: Path | None) -> None:
        """From now on into `path` (appended: a resumed run keeps what it logged before), the held records first;
        None: hold them again (the run ended)."""
        if self.file is not None:
            self.file.close()
            self.file = None
        if path is None:
            return
        self.file = QuietFileHandler(path, encoding="utf-8", delay=True)
        self.file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        for record in self.held:
            self.file.handle(record)
        self.held.clear()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        super().close()


_library_log: LibraryLog | None = None


def configure(verbose: bool = False) -> None:
    """The console of a command: this package's INFO lines and every warning; with `verbose`, the libraries' own
    output too (their records and progress bars, as they print them)."""
    global _library_log
    root = logging.getLogger()
    if not any(isinstance(handler, ConsoleHandler) for handler in root.handlers):
        root.addHandler(ConsoleHandler())
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # Python warnings as log records: each shown once per place, as Python does
    _library_log = None if verbose else (_library_log or LibraryLog())
    route_libraries()


def quiet() -> bool:
    """True unless `-v` asked for the libraries' output (and outside the command line, where nothing is routed)."""
    return _library_log is not None


def route_libraries() -> None:
    """Send the libraries' records to the library log instead of the console. Called again once they are imported,
    since each adds its own console handler then."""
    if _library_log is None:
        return
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if handler is not _library_log:
                logger.removeHandler(handler)
        if _library_log not in logger.handlers:
            logger.addHandler(_library_log)
        logger.propagate = False


def write_library_log(folder: Path | None) -> None:
    """Once a run folder exists: the libraries' records go to its `library.log` (nothing where `-v` shows them);
    None once the run has ended, so the next command's records are not written into a finished run."""
    if _library_log is not None:
        _library_log.write_to(None if folder is None else folder / LIBRARY_LOG)
