"""The error type of the command line."""


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""
