"""Checks of estimators' parameters and inputs: one wording and one error for every family.

* :func:`check_int`, :func:`check_number`, :func:`check_choice` check a
  parameter (``fit`` calls them) and return it as a plain Python value;
* :func:`fit_data` and :func:`predict_data` check the images (and labels)
  given to ``fit`` and to the prediction methods, as scikit-learn's
  ``validate_data`` does (``n_features_in_`` included), and flatten 28x28
  images to 784 columns.

All raise :class:`~digitlab.errors.ParameterError` (a ``ValueError``, as
scikit-learn expects, and a ``UserError``) stating the rule and the value
seen, e.g. ``C must be a number > 0, got -1``.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_is_fitted, validate_data

from digitlab.errors import ParameterError
from digitlab.models.base import as_pixels

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

__all__ = ["check_choice", "check_int", "check_number", "fit_data", "is_int", "is_number", "predict_data"]

_S = TypeVar("_S", bound=np.generic)


def is_int(value: object) -> TypeGuard[int | np.integer]:
    """Whether ``value`` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: object) -> TypeGuard[int | float | np.integer | np.floating]:
    """Whether ``value`` is a finite real number (Python or NumPy), not a bool."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


def _rule(kind: str, low: float | None, high: float | None, both: str, ge: str, le: str) -> str:
    """The rule a bounded value breaks, in words: ``both`` for two ends, else ``kind`` with its one bound."""
    if low is not None and high is not None:
        return both
    noun = "an integer" if kind == "an integer" else "a number"
    if low is not None:
        return f"{noun} {ge} {low:g}"
    if high is not None:
        return f"{noun} {le} {high:g}"
    return kind


def check_int(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int, if it is an integer (not a bool) in ``low..high`` (None leaves an end open)."""
    if is_int(value) and (low is None or value >= low) and (high is None or value <= high):
        return int(value)
    both = f"an integer in {low}..{high}"
    raise ParameterError(f"{name} must be {_rule('an integer', low, high, both, '>=', '<=')}, got {value!r}")


def check_number(name: str, value: object, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float, if it is a finite number (not a bool) between ``low`` and ``high``.

    ``low_open``/``high_open`` exclude the ends: ``check_number("C", c, 0, low_open=True)`` is "> 0".
    """
    if is_number(value):
        v = float(value)
        too_low = low is not None and (v <= low if low_open else v < low)
        too_high = high is not None and (v >= high if high_open else v > high)
        if not (too_low or too_high):
            return v
    both = ""
    if low is not None and high is not None:
        both = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    rule = _rule("a finite number", low, high, both, ">" if low_open else ">=", "<" if high_open else "<=")
    raise ParameterError(f"{name} must be {rule}, got {value!r}")


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """``value``, if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def fit_data(est: BaseEstimator, X: ArrayLike, y: ArrayLike,
             dtype: type[_S]) -> tuple[NDArray[_S], NDArray[Any]]:
    """The training images as ``(n, n_features)`` of ``dtype`` and the labels as ``(n,)``; sets ``n_features_in_``.

    Raises
    ------
    ParameterError
        Not a 2-D or 3-D array of finite numbers, no rows, or not one label per row.
    """
    try:
        pixels, labels = validate_data(est, as_pixels(X, dtype), y, dtype=dtype)
    except ParameterError:
        raise
    except ValueError as exc:
        raise ParameterError(str(exc)) from exc
    return pixels, labels


def predict_data(est: BaseEstimator, X: ArrayLike, dtype: type[_S]) -> NDArray[_S]:
    """Images to predict as ``(n, n_features)`` of ``dtype``, checked against the fitted ``est``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        ``est`` is not fitted.
    ParameterError
        Not a 2-D or 3-D array of finite numbers, or not as many features as in ``fit``.
    """
    check_is_fitted(est)
    try:
        pixels: NDArray[_S] = validate_data(est, as_pixels(X, dtype), reset=False, dtype=dtype)
    except ParameterError:
        raise
    except ValueError as exc:
        raise ParameterError(str(exc)) from exc
    return pixels
