"""Exceptions shared across the package.

`UserError` (and subclasses) mean bad input: the CLI prints the message as one line and exits 2.
Messages must name what is wrong (the field, the file, the model, the question id).
"""


class UserError(Exception):
    """Bad input from the user (file, flag, config field, unknown model or question)."""


class ConfigError(UserError):
    """A config or pool file failed validation; the message names the field."""


class DataMissingError(UserError):
    """A data file or dataset is not available (offline, not downloaded, wrong path)."""
