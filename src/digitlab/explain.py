"""Per-pixel explanations of a prediction, as MLDB's ``classifier.explain``.

:func:`explain` returns, for one image and one class, a 28x28 map of signed
contributions to that class's score: positive pixels push towards the class,
negative ones away. Models with exact contributions (``contributions`` method:
linear models, nearest mean, trees) use them; others fall back to occlusion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Explanation", "explain"]


@dataclass(frozen=True)
class Explanation:
    """A per-pixel explanation.

    Attributes
    ----------
    digit : int
        The class explained.
    contributions : ndarray of float, shape (28, 28)
    method : str
        ``"exact"`` or the approximation used (e.g. ``"occlusion"``).
    """

    digit: int
    contributions: np.ndarray
    method: str


def _occlusion(estimator: Any, x: np.ndarray, digit: int, patch: int = 2) -> np.ndarray:
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


def explain(estimator: Any, image: np.ndarray, digit: int | None = None) -> Explanation:
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
    """
    x = np.asarray(image, dtype=np.float32).reshape(1, 784)
    if digit is None:
        digit = int(estimator.predict(x)[0])
    if hasattr(estimator, "contributions"):
        return Explanation(digit, np.asarray(estimator.contributions(x, digit))[0].reshape(28, 28), "exact")
    return Explanation(digit, _occlusion(estimator, x, digit), "occlusion")
