"""The one exception type for bad user input: the CLI prints it as one line and exits with code 2."""


class PipelineError(Exception):
    """A recipe, data set or checkpoint the pipeline cannot use; the message names the field and a fix."""

    exit_code = 2

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class TrainingStopped(PipelineError):
    """Training stopped on purpose (e.g. a non-finite loss) after saving what could be saved; exit code 3."""

    exit_code = 3


class TrainingInterrupted(PipelineError):
    """Training stopped by a signal (SIGINT, SIGTERM) after saving a checkpoint; exit code 128 + the signal."""

    def __init__(self, message: str, signal_number: int, quiet: bool = False):
        super().__init__(message)
        self.exit_code = 128 + signal_number
        self.quiet = quiet  # every process stops alike: one of them says so
