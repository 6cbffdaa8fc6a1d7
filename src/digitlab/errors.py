"""Exceptions raised by the digitlab library.

Two kinds matter to the shells around the library:

* :class:`UserError` and its subclasses: the caller's input is wrong (a bad
  argument, file or value). The CLI exits 2; the HTTP server answers 4xx.
* any other :class:`DigitlabError`, :class:`ModelError` among them: digitlab
  or a file it owns is broken, not the user's request. The CLI exits 1; the
  server answers 5xx.

Library code never exits or builds HTTP responses itself; the CLI's
``DigitlabGroup`` and the server's error table (``digitlab.serve.errors``)
are the only places that translate.
"""

from __future__ import annotations

from types import ModuleType

__all__ = [
    "DataError",
    "DataNotFoundError",
    "DigitlabError",
    "MissingExtraError",
    "ModelError",
    "NoInkError",
    "NotFoundError",
    "ParameterError",
    "StoreBusyError",
    "TooLargeError",
    "UserError",
    "require_torch",
]


class DigitlabError(Exception):
    """Base class for every error digitlab raises on purpose."""


class UserError(DigitlabError):
    """The input given by the user is wrong: a bad argument, file or value."""


class ParameterError(UserError, ValueError):
    """An estimator was given a bad parameter or argument; the message states the rule and the value seen.

    It is a :class:`ValueError` too, as scikit-learn (and its estimator
    checks) expect of a bad parameter or fit input, and a :class:`UserError`,
    so the CLI exits 2 and the server answers 422 without translating it.
    """


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


class StoreBusyError(UserError):
    """Another process held the store for longer than the wait allowed (``$DIGITLAB_STORE_TIMEOUT``).

    Nothing is wrong with the request: trying again later, or waiting longer, succeeds.
    A user error (CLI exit 2) rather than an internal one; a server answers 503.
    """


class TooLargeError(UserError):
    """An input is larger than accepted: a picture's side or pixel count, a decompression bomb, a body."""


class NoInkError(UserError):
    """The picture or canvas is empty or nearly empty: there is no digit to recognise."""


class MissingExtraError(UserError):
    """The work asked for needs an optional dependency that is not installed; the message names the extra.

    ``pip install digitlab`` predicts, explains and serves with ONNX Runtime
    only; training the CNN (and whatever else needs its float network) needs
    PyTorch: ``pip install 'digitlab[train]'``. The CLI exits 2; the server
    answers 501 (Not Implemented: this installation cannot do it).
    """

    def __init__(self, what: str, extra: str = "train", package: str = "torch") -> None:
        super().__init__(f"{what} needs {package}, which is not installed: pip install 'digitlab[{extra}]'")
        self.what = what
        self.extra = extra
        self.package = package


def require_torch(what: str) -> ModuleType:
    """The ``torch`` module, imported now; :class:`MissingExtraError` naming ``what`` if it is not installed."""
    try:
        import torch
    except ImportError:
        raise MissingExtraError(what) from None
    return torch


class ModelError(DigitlabError):
    """A saved model is corrupt, of another version, or cannot be used: digitlab's fault, not the request's."""

