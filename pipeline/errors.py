"""The one exception type for bad user input: the CLI prints it as one line and exits with code 2."""


class PipelineError(Exception):
    """A recipe, data set or checkpoint the pipeline cannot use; the message names the field and a fix."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)
