"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class I2IError(Exception):
    """An error caused by input the user can fix; its message is the whole story."""


class ConfigError(I2IError):
    """Unknown or malformed configuration key or value."""


class DataError(I2IError):
    """Missing, malformed or unreadable dataset files."""


class TrainingError(I2IError):
    """Training stopped (e.g. a non-finite loss)."""
