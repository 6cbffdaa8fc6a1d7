"""Per-pixel explanations of a prediction, as MLDB's ``classifier.explain``.

:func:`explain` returns, for one image and one class, a 28x28 map of signed
contributions to that class's score: positive pixels push towards the class,
negative ones away. The method is the one the model declares
(:attr:`DigitClassifier.explanation <digitlab.models.base.DigitClassifier>`):

* ``"exact"``: models whose scores split exactly into per-pixel terms (linear
  models, nearest mean, trees) give them (:class:`~digitlab.models.base.ExactExplainer`);
* ``"integrated_gradients"``: differentiable models (the CNN) give integrated
  gradients of the class logit from a black image (the map sums, up to the
  Riemann-sum error, to ``logit(image) - logit(black)``;
  :class:`~digitlab.models.base.GradientExplainer`);
* ``"occlusion"``: any other model: the drop of the class score when each
  2x2 block of ink is blacked out, shared among the block's pixels by ink.
  Also the CNN's when torch is not installed (``pip install digitlab``
  without the ``train`` extra): its int8 graph scores the occluded images in
  one batch. :attr:`Explanation.method` says which method was used.

:func:`digitlab.figures.render_explanation` draws a map as a PNG: green for
positive, red for negative, over the faint digit (``render`` here is the same
function, kept for existing callers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from digitlab.errors import MissingExtraError, ModelError, UserError
from digitlab.figures import render_explanation as render
from digitlab.models.base import ExactExplainer, ExplanationMethod, GradientExplainer

if TYPE_CHECKING:
    from digitlab.models.base import DigitClassifier

__all__ = ["Explanation", "explain", "render"]


@dataclass(frozen=True)
class Explanation:
    """A per-pixel explanation.

    Attributes
    ----------
    digit : int
        The class explained.
    contributions : ndarray of float, shape (28, 28)
    method : str
        ``"exact"``, ``"integrated_gradients"`` or ``"occlusion"``.
    image : ndarray of uint8, shape (28, 28), optional
        The explained image, drawn faintly under the colours when the explanation shows itself.
    """

    digit: int
    contributions: NDArray[np.float64]
    method: ExplanationMethod
    image: NDArray[np.uint8] | None = field(default=None, repr=False, compare=False)

    def _repr_png_(self) -> bytes:
        from digitlab.notebook.display import explanation_png
        return explanation_png(self)

    def _repr_html_(self) -> str:
        from digitlab.notebook.display import explanation_html
        return explanation_html(self)


def _occlusion(estimator: DigitClassifier, x: NDArray[np.float32], digit: int,
               patch: int = 2) -> NDArray[np.float64]:
    """Drop in the class score when each ``patch`` x ``patch`` block is set to 0; shape (28, 28)."""
    k = int(np.flatnonzero(estimator.classes_ == digit)[0])
    img = x.reshape(28, 28).astype(np.float32)
    batch, cells = [], []
    for r in range(0, 28, patch):
        for c in range(0, 28, patch):
            if img[r:r + patch, c:c + patch].any():
                occluded = img.copy()
                occluded[r:r + patch, c:c + patch] = 0
                batch.append(occluded.reshape(-1))
                cells.append((r, c))
    out = np.zeros((28, 28), dtype=np.float64)
    if not batch:
        return out
    base = float(estimator.scores(img.reshape(1, -1))[0, k])
    scores = estimator.scores(np.stack(batch))[:, k]
    for (r, c), s in zip(cells, scores, strict=True):
        block = img[r:r + patch, c:c + patch]
        total = block.sum()
        out[r:r + patch, c:c + patch] = (base - s) * block / total  # share the drop by ink
    return out


def explain(estimator: DigitClassifier, image: ArrayLike, digit: int | None = None) -> Explanation:
    """Explain ``estimator``'s score for ``digit`` on one image.

    Parameters
    ----------
    estimator : fitted digitlab classifier
    image : array-like, shape (28, 28) or (784,)
        Pixel intensities 0-255 (an MNIST-style image).
    digit : int, optional
        Class to explain; default: the predicted class.

    Returns
    -------
    Explanation
        ``contributions`` has shape (28, 28).

    Raises
    ------
    UserError
        The image does not have 784 pixels, or ``digit`` is not a class of the model.
    ModelError
        The model declares an explanation it does not implement.
    """
    arr = np.asarray(image, dtype=np.float32)
    if arr.size != 784:
        raise UserError(f"explain needs one 28x28 image (784 pixels), got shape {arr.shape}")
    x = arr.reshape(1, 784)
    if digit is None:
        digit = int(estimator.predict(x)[0])
    elif not np.any(np.asarray(estimator.classes_) == digit):
        raise UserError(f"digit must be one of {np.asarray(estimator.classes_).tolist()}, got {digit!r}")
    digit = int(digit)
    method = estimator.explanation
    if method == "exact":
        if not isinstance(estimator, ExactExplainer):
            raise ModelError(f"{type(estimator).__name__} declares exact explanations but has no contributions()")
        c = np.asarray(estimator.contributions(x, digit), dtype=np.float64)[0]
    elif method == "integrated_gradients":
        if not isinstance(estimator, GradientExplainer):
            raise ModelError(f"{type(estimator).__name__} declares integrated gradients but has no "
                             "integrated_gradients()")
        try:
            c = np.asarray(estimator.integrated_gradients(x, digit), dtype=np.float64)[0]
        except MissingExtraError:  # no torch: the float network is out of reach, its int8 graph is not
            method = "occlusion"
            c = _occlusion(estimator, x, digit)
    else:
        c = _occlusion(estimator, x, digit)
    shown = np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8).reshape(28, 28)
    return Explanation(digit, c.reshape(28, 28), method, shown)

