"""Checks of estimators' parameters and inputs: one wording and one error for every family.

* :func:`check_int`, :func:`check_number`, :func:`check_choice` check a
  parameter (``fit`` calls them) and return it as a plain Python value;
* :func:`fit_data` and :func:`predict_data` check the images (and labels)
  given to ``fit`` and to the prediction methods, as scikit-learn's
  ``validate_data`` does (``n_features_in_`` included), flatten 28x28
  images to 784 columns, and put pixels on the scale the model works on.

Input scales
------------
``fit`` detects the scale of its images (:func:`detect_scale`) and records
it as ``input_scale_``:

* ``"0-255"``: pixel intensities 0-255 (MNIST, digitlab's own images);
* ``"0-1"``: the same divided by 255, as Keras and torchvision users feed them;
* ``"features"``: anything else (a negative value or one above 255, e.g. the
  output of scikit-learn's ``StandardScaler``): not pixels, so they are used
  exactly as given, as any scikit-learn estimator would use them.

Pixels on either pixel scale are converted to the scale the family works
on (``to="unit"`` for the linear and kernel models, ``to="byte"`` for the
others), so a model fitted on 0-1 images is as accurate as one fitted on
0-255 images. The prediction methods then refuse (:class:`ParameterError`)
images on the other pixel scale: 0-255 images given to a model fitted on
0-1 images, images whose brightest pixel is at most 1 given to a model
fitted on 0-255 images, or negative pixels given to either.

All raise :class:`~digitlab.errors.ParameterError` (a ``ValueError``, as
scikit-learn expects, and a ``UserError``) stating the rule and the value
seen, e.g. ``C must be a number > 0, got -1``.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_is_fitted, validate_data

from digitlab.errors import ParameterError
from digitlab.models.base import as_pixels

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

__all__ = ["SCALES", "InputScale", "WorkScale", "check_choice", "check_int", "check_number", "check_scale",
           "detect_scale", "fit_data", "is_int", "is_number", "predict_data", "record_scale", "scale_factor"]

_S = TypeVar("_S", bound=np.generic)

#: The input scales ``fit`` tells apart (see the module docstring).
InputScale = Literal["0-255", "0-1", "features"]
SCALES: tuple[InputScale, ...] = ("0-255", "0-1", "features")
#: The scale a family computes on: pixels in [0, 1] or in [0, 255].
WorkScale = Literal["unit", "byte"]
#: Slack for float rounding at the ends of a scale (a 0-1 image made as ``x / 255`` may hold 1.0000001).
_EPS = 1e-6
#: A model fitted on 0-255 pixels checks predictions on the 0-1 scale only if its brightest training pixel
#: reached this (real 0-255 images do; a few small synthetic numbers need not be pixels at all).
_BRIGHT = 32.0


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


def detect_scale(X: NDArray[Any]) -> InputScale:
    """The scale of training images ``X``: ``"features"``, ``"0-1"`` or ``"0-255"`` (module docstring).

    ``"features"`` when a value is below 0 or above 255, else ``"0-1"`` when
    none is above 1, else ``"0-255"``.
    """
    low, high = (float(X.min()), float(X.max())) if X.size else (0.0, 0.0)
    if low < -_EPS or high > 255 + _EPS:
        return "features"
    return "0-1" if high <= 1 + _EPS else "0-255"


def scale_factor(scale: InputScale, to: WorkScale) -> float:
    """What images on ``scale`` are multiplied by to be on the working scale ``to`` (1 for ``"features"``)."""
    if scale == "0-255" and to == "unit":
        return 1 / 255
    if scale == "0-1" and to == "byte":
        return 255.0
    return 1.0


def _rescaled(pixels: NDArray[_S], scale: InputScale, to: WorkScale) -> NDArray[_S]:
    factor = scale_factor(scale, to)
    if factor == 1.0:
        return pixels
    arr: NDArray[Any] = pixels
    out: NDArray[Any] = arr / 255.0 if factor == 1 / 255 else arr * factor  # / 255: as the models always did
    rescaled: NDArray[_S] = out.astype(pixels.dtype, copy=False)
    return rescaled


def fit_data(est: BaseEstimator, X: ArrayLike, y: ArrayLike, dtype: type[_S],
             to: WorkScale = "byte") -> tuple[NDArray[_S], NDArray[Any]]:
    """The training images as ``(n, n_features)`` of ``dtype`` on the scale ``to``, and the labels as ``(n,)``.

    Sets ``n_features_in_``, and ``input_scale_`` (:func:`detect_scale`);
    images on a pixel scale are converted to ``to``, ``"features"`` are kept
    as they are.

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
    return _rescaled(pixels, record_scale(est, pixels), to), labels


def record_scale(est: BaseEstimator, pixels: NDArray[Any]) -> InputScale:
    """Start a fit on ``pixels``: set and return ``est.input_scale_``, set ``input_max_`` and reset ``temperature_``.

    ``input_max_`` is the brightest training value; ``temperature_`` goes back
    to 1, as a calibration of a previous fit does not hold for the new one.
    """
    scale = detect_scale(pixels)
    # fitted attributes every DigitClassifier declares (set through setattr: ``est`` is typed as sklearn's base)
    setattr(est, "input_scale_", scale)  # noqa: B010
    setattr(est, "input_max_", float(pixels.max()) if pixels.size else 0.0)  # noqa: B010
    setattr(est, "temperature_", 1.0)  # noqa: B010
    return scale


def check_scale(est: BaseEstimator, pixels: NDArray[Any]) -> None:
    """Refuse images on another pixel scale than the fitted ``est``'s (module docstring).

    Raises
    ------
    ParameterError
        Negative pixels for a pixel model; a value above 1 for a model fitted
        on 0-1 images; an image whose brightest pixel is in (0, 1] for a model
        fitted on 0-255 images. The message names the row and the fix.
    """
    scale: InputScale = getattr(est, "input_scale_", "0-255")
    if scale == "features" or not pixels.size:
        return
    row_max = pixels.max(axis=1)
    if float(pixels.min()) < -_EPS:
        row = int(np.flatnonzero(pixels.min(axis=1) < -_EPS)[0])
        raise ParameterError(f"pixel intensities must be >= 0 (the model was fitted on pixels {scale}); image "
                             f"{row} has {float(pixels[row].min()):g}: standardised data are not pixels")
    if scale == "0-1":
        high = np.flatnonzero(row_max > 1 + _EPS)
        if high.size:
            row = int(high[0])
            raise ParameterError(f"the model was fitted on pixels 0-1, but image {row} has a pixel of "
                                 f"{float(row_max[row]):g}: divide 0-255 images by 255 (or fit on 0-255 images)")
    elif getattr(est, "input_max_", 255.0) >= _BRIGHT:
        faint = np.flatnonzero((row_max > 0) & (row_max <= 1 + _EPS))
        if faint.size:
            row = int(faint[0])
            raise ParameterError(f"the model was fitted on pixels 0-255, but image {row} is on the 0-1 scale "
                                 f"(brightest pixel {float(row_max[row]):g}): multiply 0-1 images by 255 "
                                 "(or fit on 0-1 images)")


def predict_data(est: BaseEstimator, X: ArrayLike, dtype: type[_S], to: WorkScale = "byte") -> NDArray[_S]:
    """Images to predict as ``(n, n_features)`` of ``dtype`` on the scale ``to``, checked against the fitted ``est``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        ``est`` is not fitted.
    ParameterError
        Not a 2-D or 3-D array of finite numbers, not as many features as in
        ``fit``, or pixels on another scale than in ``fit`` (:func:`check_scale`).
    """
    check_is_fitted(est)
    try:
        pixels: NDArray[_S] = validate_data(est, as_pixels(X, dtype), reset=False, dtype=dtype)
    except ParameterError:
        raise
    except ValueError as exc:
        raise ParameterError(str(exc)) from exc
    check_scale(est, pixels)
    return _rescaled(pixels, getattr(est, "input_scale_", "0-255"), to)
