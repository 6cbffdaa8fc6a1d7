"""Personal profiles: a model adapts to one person's hand from their corrections, with no training step.

A profile is the drawings one person corrected (:mod:`digitlab.corrections`
stores them), each with its true label. To read a new drawing under a
profile, the model's probabilities are blended with what the profile's
nearest drawings say:

1. every drawing is *embedded*: for the CNN, the L2-normalised output of its
   convolutional blocks (the penultimate layer, before dropout and the linear
   layer; :class:`CNNFeatures`); for every other family, the drawing's pixels
   blurred a little and L2-normalised (:class:`BlurredPixels`);
2. for each digit ``c`` the profile holds, its evidence is the kernel of the
   nearest of its drawings, ``k_c = max_i exp((cos(x, x_i) - 1) / tau)``: 1 for
   the very drawing, falling fast as drawings differ;
3. the answer is ``p'(c) = (m * p(c) + k_c) / sum``: the model's probabilities
   ``p`` weighed ``m`` against the profile's evidence (:func:`adapt`).

Taking each digit's *nearest* drawing (not the sum over all) keeps a profile
of many drawings of a few digits from pulling every other digit towards them;
a drawing unlike all of the profile's leaves the model's answer as it was.
``tau`` and ``m`` are :data:`CNN_ADAPTATION` and :data:`PIXEL_ADAPTATION`;
``benchmarks/bench_profiles.py --tune`` prints a grid of them on the pen
digits of writers 1-12 and reports the shipped values on writers 13-30
(BENCHMARKS.md, docs/learn.md).

A :class:`Profile` holds a person's corrections and, per model, their
embeddings, computed once as drawings arrive.
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from digitlab.errors import ParameterError, UserError

if TYPE_CHECKING:
    from digitlab.models.base import DigitClassifier

__all__ = ["CNN_ADAPTATION", "PIXEL_ADAPTATION", "PROFILE_NAME", "Adaptation", "BlurredPixels", "CNNFeatures",
           "Embedder", "Profile", "adapt", "check_profile_name", "embedder_for"]

#: A profile name: what the API, the page and the store accept.
PROFILE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_profile_name(name: object) -> str:
    """Return ``name`` if it is a valid profile name, else raise :class:`UserError` stating the rule."""
    if not isinstance(name, str) or not PROFILE_NAME.match(name):
        raise UserError(f"a profile name must be 1-64 letters, digits, '_' or '-'; got {name!r}")
    return name


@dataclass(frozen=True)
class Adaptation:
    """How much a profile's drawings move a model's answer.

    Attributes
    ----------
    tau : float
        Width of the kernel on cosine distance: a drawing at cosine ``s`` from
        the one read weighs ``exp((s - 1) / tau)``.
    model_weight : float
        ``m``: the weight of the model's probabilities against the evidence of
        the profile (a profile drawing identical to the one read has evidence 1).
    """

    tau: float
    model_weight: float

    def __post_init__(self) -> None:
        if not self.tau > 0:
            raise ParameterError(f"tau must be > 0, got {self.tau}")
        if not self.model_weight > 0:
            raise ParameterError(f"model_weight must be > 0, got {self.model_weight}")


#: For the CNN's penultimate features.
CNN_ADAPTATION = Adaptation(tau=0.1, model_weight=0.1)
#: For blurred pixels (every other family): pixel distances say less, so only close drawings count.
PIXEL_ADAPTATION = Adaptation(tau=0.03, model_weight=0.3)


class Embedder(Protocol):
    """Maps drawings to unit vectors in which the same person's same digit lies close."""

    adaptation: Adaptation

    def __call__(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        """(n, 784) pixels 0-255 -> (n, d) float32 rows of unit length (zero rows for empty drawings)."""
        ...


def _unit_rows(a: NDArray[np.floating]) -> NDArray[np.float32]:
    a = np.asarray(a, dtype=np.float32)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    out: NDArray[np.float32] = a / np.maximum(norms, np.float32(1e-12))
    return out


class CNNFeatures:
    """The CNN's penultimate features: its convolutional blocks' output, flattened, of unit length.

    Runs the float network with each BatchNorm folded into its convolution
    (the same features as the trained network), in inference mode on the
    calling thread's torch threads.

    Parameters
    ----------
    estimator : CNNClassifier
        Fitted.
    """

    adaptation = CNN_ADAPTATION

    def __init__(self, estimator: DigitClassifier) -> None:
        from digitlab.models.cnn.net import fold_batchnorm

        net = getattr(estimator, "net_", None)
        if net is None:
            raise ParameterError("CNNFeatures needs a fitted CNN (with net_)")
        self._features = fold_batchnorm(net).features

    def __call__(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        import torch

        from digitlab.models.cnn.net import standardised

        x = torch.from_numpy(standardised(np.asarray(X, dtype=np.float32).reshape(-1, 784)))
        with torch.inference_mode():
            f = self._features(x.contiguous(memory_format=torch.channels_last))     # (n, 4w, 4, 4)
            flat = torch.flatten(f, 1).float().numpy()                              # (n, 64w)
        return _unit_rows(flat)


class BlurredPixels:
    """The pixels, blurred with a 3x3 binomial kernel (so a stroke one pixel off still overlaps), of unit length."""

    adaptation = PIXEL_ADAPTATION

    def __call__(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        img = np.asarray(X, dtype=np.float32).reshape(-1, 28, 28)
        padded = np.pad(img, ((0, 0), (1, 1), (1, 1)))
        rows = padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]                 # (n, 28, 30)
        blurred = rows[:, :, :-2] + 2 * rows[:, :, 1:-1] + rows[:, :, 2:]           # (n, 28, 28)
        return _unit_rows(blurred.reshape(-1, 784))


_EMBEDDERS: weakref.WeakKeyDictionary[object, Embedder] = weakref.WeakKeyDictionary()
_EMBEDDERS_LOCK = threading.Lock()


def _has_float_net(estimator: DigitClassifier) -> bool:
    """A fitted CNN whose float network can run here (torch installed)."""
    from digitlab.errors import MissingExtraError

    if estimator.family != "cnn":
        return False
    try:
        return getattr(estimator, "net_", None) is not None
    except MissingExtraError:
        return False


def embedder_for(estimator: DigitClassifier) -> Embedder:
    """The embedding a model's profiles use: :class:`CNNFeatures` for a CNN, :class:`BlurredPixels` otherwise.

    Without torch (the ``[train]`` extra), a CNN's profiles use :class:`BlurredPixels` too.

    Made once per fitted estimator (and forgotten with it), so all profiles share it.
    """
    with _EMBEDDERS_LOCK:
        found = _EMBEDDERS.get(estimator)
        if found is None:
            found = _EMBEDDERS[estimator] = CNNFeatures(estimator) if _has_float_net(estimator) else BlurredPixels()
        return found


def adapt(proba: NDArray[np.float64], query: NDArray[np.float32], examples: NDArray[np.float32],
          labels: NDArray[np.integer], adaptation: Adaptation) -> NDArray[np.float64]:
    """Blend a model's probabilities with the evidence of a profile's nearest drawings of each digit.

    Parameters
    ----------
    proba : ndarray of shape (n, 10)
        The model's probabilities of digits 0-9.
    query : ndarray of shape (n, d)
        The drawings read, embedded (unit rows).
    examples : ndarray of shape (m, d)
        The profile's drawings, embedded the same way.
    labels : ndarray of int of shape (m,)
        Their true digits.
    adaptation : Adaptation

    Returns
    -------
    ndarray of float64, shape (n, 10)
        ``(m * proba + k) / sum``, ``k[:, c]`` the kernel of the nearest example of digit ``c`` (0 when the
        profile has none). With no examples, ``proba`` itself.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if len(examples) == 0:
        return proba
    sims = np.asarray(query, dtype=np.float32) @ np.asarray(examples, dtype=np.float32).T      # (n, m)
    kernel = np.exp((np.minimum(sims, 1.0).astype(np.float64) - 1.0) / adaptation.tau)        # (n, m)
    evidence = np.zeros_like(proba)                                                           # (n, 10)
    labels = np.asarray(labels)
    for digit in np.unique(labels):
        evidence[:, int(digit)] = kernel[:, labels == digit].max(axis=1)
    blended = adaptation.model_weight * proba + evidence
    out: NDArray[np.float64] = blended / blended.sum(axis=1, keepdims=True)
    return out


@dataclass
class _Embedded:
    """One model's embeddings of a profile's first ``len(rows)`` drawings."""

    embedder: Embedder
    rows: NDArray[np.float32]


@dataclass
class Profile:
    """One person's corrections, and their embeddings per model.

    Attributes
    ----------
    name : str or None
        None: the corrections given without a profile.
    ids : ndarray of int64, shape (n,)
    labels : ndarray of int64, shape (n,)
    pixels : ndarray of uint8, shape (n, 784)
        What the model saw of each drawing (empty, (0, 784), for a profile read for its counts only).
    """

    name: str | None
    ids: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    labels: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pixels: NDArray[np.uint8] = field(default_factory=lambda: np.zeros((0, 784), dtype=np.uint8))
    _embedded: dict[int, tuple[object, _Embedded]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def counts(self) -> list[int]:
        """Drawings per digit, 0-9."""
        return [int(n) for n in np.bincount(self.labels, minlength=10)[:10]]

    def with_drawing(self, id_: int, label: int, pixels: NDArray[np.uint8]) -> Profile:
        """A new profile with one more drawing; embeddings already made are kept (only the new one is added)."""
        grown = Profile(self.name, np.append(self.ids, np.int64(id_)), np.append(self.labels, np.int64(label)),
                        np.vstack([self.pixels, np.asarray(pixels, dtype=np.uint8).reshape(1, 784)]))
        with self._lock:
            grown._embedded = dict(self._embedded)
        return grown

    def embeddings(self, model: DigitClassifier) -> tuple[Embedder, NDArray[np.float32]]:
        """The embedder of ``model`` (:func:`embedder_for`) and this profile's drawings embedded by it.

        Drawings embedded before (by this profile or the one it grew from) are not embedded again.
        """
        key = id(model)
        with self._lock:
            held = self._embedded.get(key)
            if held is None or held[0] is not model:
                held = (model, _Embedded(embedder_for(model), np.zeros((0, 0), dtype=np.float32)))
            done = held[1]
            if len(done.rows) < len(self):
                new = done.embedder(self.pixels[len(done.rows):].astype(np.float32))
                rows = new if len(done.rows) == 0 else np.vstack([done.rows, new])
                done = _Embedded(done.embedder, rows)
                held = (model, done)
            self._embedded[key] = held
            return done.embedder, done.rows

    def adapt(self, model: DigitClassifier, x: NDArray[np.float32], proba: NDArray[np.float64]) -> NDArray[np.float64]:
        """``proba`` (n, 10) of ``model`` for drawings ``x`` (n, 784), adapted to this profile (:func:`adapt`)."""
        if len(self) == 0:
            return np.asarray(proba, dtype=np.float64)
        embedder, rows = self.embeddings(model)
        query = embedder(np.asarray(x, dtype=np.float32).reshape(-1, 784))
        return adapt(proba, query, rows, self.labels, embedder.adaptation)
