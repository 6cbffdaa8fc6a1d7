"""The sketchpad: draw a digit in a notebook and watch a model recognise it as you draw.

:class:`Sketchpad` is an `anywidget <https://anywidget.dev>`_ widget, so it runs
wherever Jupyter widgets do (JupyterLab, Notebook 7, VS Code, Colab) with no
server extension; its JavaScript and CSS ship in this package
(``notebook/static/``) and it fetches nothing.

The front end only draws and records strokes; everything else happens in the
kernel, exactly as MLPaint does it on the server: the strokes are rendered and
normalised by :func:`digitlab.preprocess.render_strokes`, scored by the
model's :meth:`~digitlab.models.base.DigitClassifier.scores_and_proba` and
explained by :func:`digitlab.explain.explain`. So setting :attr:`Sketchpad.strokes`
from Python predicts too, which is how a lesson (or a test) drives the pad
without a browser.

While a stroke is drawn the page sends the strokes so far, with at most one
update waiting for the kernel: the page counts its updates in ``_asked`` and
the kernel echoes the last one it answered in ``_answered``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from digitlab.errors import NoInkError, UserError
from digitlab.models.base import DigitClassifier
from digitlab.models.io import LoadedModel
from digitlab.preprocess import check_drawing, render_drawing

__all__ = ["CANVAS", "Sketchpad"]

_STATIC = Path(__file__).parent / "static"
#: Side of the drawing canvas in canvas pixels (strokes are points on it), as MLPaint's.
CANVAS = 280
_EMPTY = "Draw a digit"


def _resolve_model(model: str | os.PathLike[str] | LoadedModel | DigitClassifier) -> tuple[DigitClassifier, str]:
    """The estimator and the name shown for a model name, a model folder, a loaded model or a fitted estimator."""
    if isinstance(model, LoadedModel):
        return model.estimator, model.name
    if isinstance(model, DigitClassifier):
        if not hasattr(model, "classes_"):
            raise UserError(f"the sketchpad needs a fitted model; {type(model).__name__} is not fitted (call fit)")
        return model, type(model).__name__
    if isinstance(model, str | os.PathLike):
        from digitlab.models.io import load_model
        from digitlab.workflows import resolve_model

        path, name = resolve_model(model)
        return load_model(path, name=name).estimator, name
    raise UserError("model must be a model name, a model folder, a LoadedModel or a fitted digitlab model, got "
                    f"{type(model).__name__}")


class Sketchpad(anywidget.AnyWidget):
    """A canvas to draw digits on, with the model's live prediction, score bars, the 28x28 input and the explanation.

    Parameters
    ----------
    model : str, path-like, LoadedModel or fitted DigitClassifier, default="default"
        A saved model's name (``"default"`` is the bundled CNN unless you saved one of that
        name) or folder, a :class:`~digitlab.models.io.LoadedModel`, or an estimator fitted
        in the notebook.
    strokes : list of strokes, optional
        Initial drawing (see :attr:`strokes`).
    pen_width : float, default=20.0
        Pen diameter in canvas pixels, as MLPaint's default.
    explain : bool, default=True
        Compute the explanation of each prediction (integrated gradients for the CNN:
        tens of milliseconds; occlusion for models without a faster method).

    Attributes
    ----------
    strokes : list of list of [x, y]
        The drawing: strokes of points on the 280 x 280 canvas (origin top left). Set it
        to draw from Python; the prediction follows at once.
    prediction : dict or None
        ``{"digit", "probabilities", "scores", "classes", "model"}`` for the current
        drawing, ``probabilities`` and ``scores`` in the order of ``classes`` (the ten
        digits for most models); None while nothing (or only a dot) is drawn.
        ``pad.observe(fn, names="prediction")`` calls ``fn`` on every new prediction.
    pixels : ndarray of uint8, shape (28, 28), or None
        What the model saw: the drawing normalised like MNIST.
    explanation : Explanation or None
        Why the model predicted what it did (or ``explain_digit``, when set).
    explain_digit : int or None
        The digit to explain; None explains the predicted one. Clicking a score bar sets it.
    pen_width : float
    status : str
        What the pad says under the canvas: a hint, why nothing is predicted, or an error.
    estimator : DigitClassifier
        The model.

    Examples
    --------
    >>> from digitlab.notebook import Sketchpad
    >>> pad = Sketchpad(model="default")
    >>> pad.strokes = [[(140, 40), (140, 240)]]   # a one, drawn from Python
    >>> pad.prediction["digit"]
    1
    """

    _esm = _STATIC / "sketchpad.js"
    _css = _STATIC / "sketchpad.css"

    size = traitlets.Int(CANVAS, read_only=True).tag(sync=True)
    strokes: traitlets.List[Any] = traitlets.List(traitlets.Any()).tag(sync=True)
    pen_width = traitlets.Float(20.0).tag(sync=True)
    explain_digit = traitlets.Int(None, allow_none=True).tag(sync=True)
    prediction = traitlets.Dict(default_value=None, allow_none=True).tag(sync=True)
    status = traitlets.Unicode(_EMPTY).tag(sync=True)
    model_name = traitlets.Unicode("").tag(sync=True)
    _classes: traitlets.List[Any] = traitlets.List().tag(sync=True)
    # What the model saw (784 ints) and the explanation ({"digit", "method", "values": 784 floats}), or empty.
    _input: traitlets.List[int] = traitlets.List().tag(sync=True)
    _explanation = traitlets.Dict(default_value=None, allow_none=True).tag(sync=True)
    # Updates sent by the page, and the last one the kernel has answered (one update in flight).
    _asked = traitlets.Int(0).tag(sync=True)
    _answered = traitlets.Int(0).tag(sync=True)

    def __init__(self, model: str | os.PathLike[str] | LoadedModel | DigitClassifier = "default", *,
                 strokes: list[Any] | None = None, pen_width: float = 20.0, explain: bool = True,
                 **kwargs: Any) -> None:
        estimator, name = _resolve_model(model)
        self._estimator = estimator
        self._explain = bool(explain)
        self._drawn: tuple[list[Any], float, int | None] = ([], 20.0, None)
        super().__init__(model_name=name, pen_width=pen_width, _classes=np.asarray(estimator.classes_).tolist(),
                         **kwargs)
        if strokes:
            self.strokes = strokes

    # ------------------------------------------------------------------------------------- reading

    @property
    def estimator(self) -> DigitClassifier:
        """The model that predicts."""
        return self._estimator

    @property
    def pixels(self) -> np.ndarray | None:
        """The 28x28 uint8 image the model saw, or None while nothing is drawn."""
        if len(self._input) != 784:
            return None
        return np.asarray(self._input, dtype=np.uint8).reshape(28, 28)

    @property
    def explanation(self) -> Any:
        """The :class:`~digitlab.explain.Explanation` of the current prediction, or None."""
        from digitlab.explain import Explanation

        e = self._explanation
        if not e:
            return None
        return Explanation(int(e["digit"]), np.asarray(e["values"], dtype=np.float64).reshape(28, 28), e["method"],
                           image=self.pixels)

    def clear(self) -> None:
        """Wipe the drawing (the prediction becomes None)."""
        self.strokes = []

    # ----------------------------------------------------------------------------------- checking

    @traitlets.validate("strokes")
    def _check_strokes(self, proposal: traitlets.Bunch) -> list[list[list[float]]]:
        """Strokes as plain lists of [x, y] floats, checked by the one rule of the library and the server."""
        try:
            drawing = check_drawing(proposal["value"], CANVAS, CANVAS, self.pen_width)
        except UserError as exc:
            raise traitlets.TraitError(str(exc)) from None
        return [np.round(s, 2).tolist() for s in drawing.strokes]

    @traitlets.validate("pen_width")
    def _check_pen(self, proposal: traitlets.Bunch) -> float:
        try:
            return check_drawing([], CANVAS, CANVAS, proposal["value"]).pen_width
        except UserError as exc:
            raise traitlets.TraitError(str(exc)) from None

    @traitlets.validate("explain_digit")
    def _check_digit(self, proposal: traitlets.Bunch) -> int | None:
        d = proposal["value"]
        classes = np.asarray(self._estimator.classes_).tolist()
        if d is not None and d not in classes:
            raise traitlets.TraitError(f"explain_digit must be None or one of the model's classes {classes}, got {d!r}")
        return d  # type: ignore[no-any-return]

    # --------------------------------------------------------------------------------- predicting

    @traitlets.observe("strokes", "pen_width", "explain_digit", "_asked")
    def _on_change(self, change: traitlets.Bunch) -> None:
        # The page sends the strokes and a new _asked together; whichever notification comes first predicts
        # (both values are set by then), and the kernel's answer ends with _answered = _asked.
        drawing = (self.strokes, self.pen_width, self.explain_digit)
        try:
            if drawing != self._drawn:
                self._drawn = drawing
                self._predict()
        finally:
            self._answered = self._asked

    def _predict(self) -> None:
        old = self.prediction
        new: dict[str, Any] | None = None
        pixels: list[int] = []
        explanation: dict[str, Any] | None = None
        status = _EMPTY
        if self.strokes:
            try:
                x = render_drawing(check_drawing(self.strokes, CANVAS, CANVAS, self.pen_width))
            except NoInkError as exc:
                status = str(exc)
            else:
                new, explanation, status = self._score(x)
                pixels = x.reshape(-1).astype(int).tolist()
        with self.hold_sync():  # one message to the page; set_trait, as traitlets types Dict without its None
            self._input = pixels
            self.set_trait("_explanation", explanation)
            self.status = status
            self.set_trait("prediction", new)
        if new is not None and new == old:
            # traitlets notifies only on a change; a drawing that scores exactly as the last one is still news
            self._notify_trait("prediction", old, new)

    def _score(self, x: np.ndarray) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
        from digitlab.explain import explain

        est = self._estimator
        flat = x.reshape(1, 784).astype(np.float32)
        scores, proba = est.scores_and_proba(flat)
        classes = np.asarray(est.classes_)
        k = int(np.argmax(proba[0]))
        digit = classes[k].item()
        prediction = {"digit": digit, "probabilities": proba[0].tolist(), "scores": scores[0].tolist(),
                      "classes": classes.tolist(), "model": self.model_name}
        if not self._explain:
            return prediction, None, f"It's a {digit}: {100 * proba[0, k]:.1f}% sure"
        target = digit if self.explain_digit is None else self.explain_digit
        e = explain(est, x, target)
        explanation = {"digit": int(e.digit), "method": str(e.method),
                       "values": np.asarray(e.contributions, dtype=np.float64).reshape(-1).tolist()}
        return prediction, explanation, f"It's a {digit}: {100 * proba[0, k]:.1f}% sure"
