"""Exceptions raised by the digitlab library.

The CLI maps :class:`UserError` (and its subclasses) to exit code 2 and any
other :class:`DigitlabError` to exit code 1; the HTTP layer maps them to 4xx
and 5xx answers. Library code never exits or builds HTTP responses itself.
"""

from __future__ import annotations

__all__ = [
    "DigitlabError",
    "UserError",
    "DataError",
    "DataNotFoundError",
    "NotFoundError",
    "ModelError",
]


class DigitlabError(Exception):
    """Base class for every error digitlab raises on purpose."""


class UserError(DigitlabError):
    """The input given by the user is wrong: a bad argument, file or value."""


class DataError(UserError):
    """A data file is malformed. The message names the file and the record."""

    def __init__(self, path: object, message: str, record: int | None = None) -> None:
        where = f"{path}" if record is None else f"{path}, record {record}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.record = record


class DataNotFoundError(UserError):
    """A dataset (for example MNIST) is not where digitlab looks for it."""


class NotFoundError(UserError):
    """A named thing (model, run, table) does not exist."""


class ModelError(UserError):
    """A model file is corrupt, of another version, or cannot be used."""
