"""Does a drawing show one digit? The not-a-digit detector fitted for a classifier.

A classifier names a digit for anything at all. A :class:`NoveltyDetector`
says whether its input is one digit: it is a small neural network (one
hidden layer, fitted with scikit-learn's ``MLPClassifier``) over what the
classifier computes for the input:

* for a CNN, the penultimate features (what its last linear layer reads, 64w
  numbers) and the logits: the features are computed by an int8 ONNX graph
  of the network's convolutional part, exported when the detector is fitted
  and stored with it, so the server needs no PyTorch;
* for any other model, its log-probabilities and the picture pooled to 14x14.

It is fitted on positives (MNIST training digits and pen digits drawn on the
page's canvas) against negatives made by :mod:`digitlab.negatives` (letters,
symbols and shapes, scribbles, pairs of digits) and its threshold is set on
digits it was not fitted on: pen digits of *calibration writers* and MNIST
training digits kept apart, so that at most ``target_false_alarm`` of each are
flagged (:func:`fit_detector`). A threshold on the top probability alone is
weak: a confident classifier is confidently wrong on a letter.

A detector is stored beside its model, in the model folder, as
``novelty.safetensors`` (arrays) and ``novelty.json`` (threshold, measured
operating point, and the fingerprint of the model weights it was fitted
for): an additive piece, the model's own files are untouched. A detector
fitted for other weights (the bundled model was retrained) is *stale* and
not used until refitted (``digitlab novelty fit NAME``).

Pen writers: :data:`CALIBRATION_WRITERS` (25-27) set the threshold,
:data:`digitlab.pen.KEPT_OUT_WRITERS` (28-30) are never used here, so the
benchmark (``benchmarks/bench_read.py``) measures on writers unseen by the
classifier and by the detector.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from digitlab._io import atomic_write_bytes
from digitlab.errors import ModelError, ParameterError

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

    from digitlab.data.unipen import PenDigits
    from digitlab.export import OnnxPredictor
    from digitlab.models.base import DigitClassifier
    from digitlab.models.io import LoadedModel

__all__ = [
    "CALIBRATION_WRITERS",
    "DETECTOR_ARRAYS",
    "DETECTOR_CARD",
    "FIT_WRITERS",
    "DetectorInfo",
    "NoveltyDetector",
    "NoveltyFit",
    "default_pen_file",
    "detector_info",
    "fingerprint",
    "fit_detector",
    "fit_novelty",
    "load_detector",
    "load_with_detector",
    "not_a_digit",
    "save_detector",
    "training_sets",
]

DETECTOR_ARRAYS = "novelty.safetensors"
DETECTOR_CARD = "novelty.json"
FORMAT_VERSION = 1
#: Pen writers whose digits set the threshold (never fitted on).
CALIBRATION_WRITERS: tuple[int, ...] = (25, 26, 27)
#: Pen writers whose digits are fitted on (the bundled model trains on the same 24).
FIT_WRITERS: tuple[int, ...] = tuple(range(1, 25))

Kind = Literal["cnn_features", "scores_pixels"]


def fingerprint(model_dir: str | os.PathLike[str]) -> str:
    """sha256 of a model folder's weights file: which weights a detector was fitted for."""
    from digitlab.models.io import WEIGHTS_FILE

    h = hashlib.sha256()
    with open(Path(model_dir) / WEIGHTS_FILE, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- features


class _Graph:
    """An ONNX graph run by ONNX Runtime on one thread, with one session shared by threads.

    The session is made at once, so that a corrupt graph fails when the detector is loaded, not at a request.
    """

    def __init__(self, graph: bytes) -> None:
        import onnxruntime as ort

        self.graph = graph
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session: InferenceSession = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        out: NDArray[np.float32] = self._session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]
        return out


def _export_features(estimator: DigitClassifier, calibration: NDArray[np.float32]) -> bytes:
    """int8 ONNX graph of a CNN's convolutional part: (n, 1, 28, 28) standardised -> (n, 64w) penultimate features.

    Quantized as the classifier's own graph is (QDQ, per-channel weights, activation ranges measured on
    ``calibration``, standardised inputs): the features then cost what the classifier does.
    """
    import tempfile

    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from torch import nn

    from digitlab.models.cnn._int8 import _quiet
    from digitlab.models.cnn.net import fold_batchnorm

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"x": calibration[i:i + 128]} for i in range(0, len(calibration), 128)])

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            return next(self._it, None)

    net = fold_batchnorm(estimator.net_)
    trunk = nn.Sequential(net.features, nn.Flatten()).eval()
    with _quiet(), tempfile.TemporaryDirectory() as tmp:
        program = torch.onnx.export(trunk, (torch.zeros(1, 1, 28, 28),), dynamo=True, verbose=False,
                                    input_names=["x"], output_names=["features"],
                                    dynamic_shapes=({0: torch.export.Dim("n")},))
        if program is None:
            raise RuntimeError("torch.onnx.export returned no program")
        out = Path(tmp) / "features.onnx"
        quantize_static(program.model_proto, str(out), Batches(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        return out.read_bytes()


def _is_cnn(estimator: DigitClassifier) -> bool:
    return getattr(estimator, "family", None) == "cnn" and hasattr(estimator, "net_")


def _pooled(pixels: NDArray[np.float32]) -> NDArray[np.float32]:
    """(n, 784) pixels 0-255 -> (n, 196): 2x2 means on the 0-1 scale."""
    p = pixels.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)) * np.float32(1 / 255)
    out: NDArray[np.float32] = p.reshape(len(pixels), 196).astype(np.float32)
    return out


def _one_blas_thread() -> Any:
    """A context limiting BLAS to one thread (threadpoolctl, which scikit-learn brings)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


_CONTROLLER: Any = None


def _log_softmax(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    z = scores - scores.max(axis=1, keepdims=True)
    out: NDArray[np.float64] = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


# --------------------------------------------------------------------------- the detector


@dataclass(eq=False)
class NoveltyDetector:
    """Tells whether each input is one digit, for one fitted classifier.

    Attributes
    ----------
    kind : {"cnn_features", "scores_pixels"}
        What it reads (see the module docstring).
    mean, scale : ndarray of float32, shape (d,)
        Standardisation of the features.
    layers : tuple of (W, b)
        The network: ReLU between layers, one logit out (log-odds of *not a digit*).
    threshold : float
        Probability above which an input is flagged.
    card : dict
        What :func:`fit_detector` measured (``operating_point``) and how it was made.
    graph : bytes or None
        The ONNX features graph (``cnn_features``).
    """

    kind: Kind
    mean: NDArray[np.float32]
    scale: NDArray[np.float32]
    layers: tuple[tuple[NDArray[np.float32], NDArray[np.float32]], ...]
    threshold: float
    card: dict[str, Any] = field(default_factory=dict)
    graph: bytes | None = None
    _runner: _Graph | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind == "cnn_features":
            if self.graph is None:
                raise ModelError("a cnn_features detector needs its features graph")
            self._runner = _Graph(self.graph)

    def features(self, pixels: NDArray[np.float32], scores: NDArray[np.float64]) -> NDArray[np.float32]:
        """What the network reads: (n, d) float32 from pixels (n, 784) 0-255 and the classifier's scores (n, 10)."""
        from digitlab.models.cnn.inputs import standardised

        if self.kind == "cnn_features":
            assert self._runner is not None
            deep = self._runner.run(standardised(pixels))
            return np.concatenate([deep, scores.astype(np.float32)], axis=1)
        return np.concatenate([_log_softmax(scores).astype(np.float32), _pooled(pixels)], axis=1)

    def probability(self, X: ArrayLike, scores: ArrayLike) -> NDArray[np.float64]:
        """Probability that each input is *not* one digit, shape (n,).

        Parameters
        ----------
        X : array-like of shape (n, 784) or (n, 28, 28)
            The classifier's inputs, pixel intensities 0-255.
        scores : array-like of shape (n, 10)
            The classifier's ``scores`` of ``X``.
        """
        pixels = np.asarray(X, dtype=np.float32)
        pixels = pixels.reshape(len(pixels), -1) if pixels.ndim == 3 else pixels
        if pixels.ndim != 2 or not np.isfinite(pixels).all():
            from digitlab.models.base import as_pixels  # scikit-learn's check: only for inputs that need it

            pixels = as_pixels(X, np.float32)  # the full check, and its message
        s = np.asarray(scores, dtype=np.float64).reshape(len(pixels), -1)
        if len(pixels) == 0:
            return np.zeros(0)
        h = (self.features(pixels, s) - self.mean) / self.scale
        # a few rows through a small network: one BLAS thread (more only wait on each other, 20x slower here)
        with _one_blas_thread():
            for i, (w, b) in enumerate(self.layers):
                h = h @ w + b
                if i < len(self.layers) - 1:
                    np.maximum(h, 0, out=h)
        logit = np.clip(h[:, 0].astype(np.float64), -50, 50)
        out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-logit))
        return out

    def flags(self, X: ArrayLike, scores: ArrayLike) -> NDArray[np.bool_]:
        """``not_a_digit`` of each input: ``probability > threshold``, shape (n,)."""
        out: NDArray[np.bool_] = self.probability(X, scores) > self.threshold
        return out

    @property
    def false_alarm_rate(self) -> float | None:
        """The measured share of real digits flagged (the operating point), from the card."""
        op = self.card.get("operating_point", {})
        value = op.get("false_alarm_rate")
        return float(value) if value is not None else None


# --------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class _Sets:
    positives: NDArray[np.uint8]
    negatives: NDArray[np.uint8]
    calibration: dict[str, NDArray[np.uint8]]
    validation: dict[str, NDArray[np.uint8]]


def fit_detector(estimator: DigitClassifier, positives: ArrayLike, negatives: ArrayLike,
                 calibration: Mapping[str, ArrayLike], *, validation: Mapping[str, ArrayLike] | None = None,
                 target_false_alarm: Mapping[str, float] | None = None, hidden: int = 64, alpha: float = 1e-3,
                 max_iter: int = 80, seed: int = 0, model_fingerprint: str | None = None,
                 progress: Callable[..., None] | None = None) -> NoveltyDetector:
    """Fit a detector for ``estimator`` and set its threshold on held-out digits.

    Parameters
    ----------
    estimator : DigitClassifier
        A fitted ten-digit classifier.
    positives, negatives : array-like of shape (n, 784) or (n, 28, 28)
        Digits and drawings that are not one digit, normalised as the server does.
    calibration : dict of name -> array-like of shape (m, 784)
        Digits not fitted on, by source (for example ``"pen"``, ``"mnist"``):
        the threshold is the lowest that flags at most ``target_false_alarm[name]``
        of each.
    validation : dict of name -> array-like, optional
        Negatives not fitted on: their flagged share is recorded in the card.
    target_false_alarm : dict of name -> float, optional
        Default 1 % for every calibration set.
    hidden : int, default=64
        Units of the hidden layer.
    alpha : float, default=1e-3
        L2 penalty.
    max_iter : int, default=80
        Epochs of Adam.
    seed : int, default=0
    model_fingerprint : str, optional
        :func:`fingerprint` of the model's folder, recorded so that a detector of other weights is not used.

    Returns
    -------
    NoveltyDetector

    Raises
    ------
    ParameterError
        Empty sets, or a target outside (0, 1).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    report = progress or (lambda *a, **k: None)
    from digitlab.models.base import as_pixels

    pos, neg = as_pixels(positives, np.float32), as_pixels(negatives, np.float32)
    if not len(pos) or not len(neg) or not calibration:
        raise ParameterError("fit_detector needs positives, negatives and at least one calibration set")
    targets = dict.fromkeys(calibration, 0.01) | dict(target_false_alarm or {})
    for name, t in targets.items():
        if not 0 < t < 1:
            raise ParameterError(f"target_false_alarm[{name!r}] must lie in (0, 1), got {t!r}")
    kind: Kind = "cnn_features" if _is_cnn(estimator) else "scores_pixels"
    graph = None
    if kind == "cnn_features":
        from digitlab.models.cnn.inputs import standardised

        both = np.concatenate([pos, neg])
        rows = np.unique(np.linspace(0, len(both) - 1, min(len(both), 1024)).astype(np.int64))
        graph = _export_features(estimator, standardised(both[rows]))
    report("features", 0, 3)
    shell = NoveltyDetector(kind, np.zeros(1, np.float32), np.ones(1, np.float32), (), 0.5, graph=graph)

    def feats(x: NDArray[np.float32]) -> NDArray[np.float32]:
        rows = [shell.features(x[i:i + 1024], estimator.scores(x[i:i + 1024])) for i in range(0, len(x), 1024)]
        return np.concatenate(rows)

    f_pos, f_neg = feats(pos), feats(neg)
    report("features", 1, 3)
    x = np.concatenate([f_pos, f_neg])
    y = np.concatenate([np.zeros(len(f_pos)), np.ones(len(f_neg))])
    mean = x.mean(axis=0).astype(np.float32)
    scale = (x.std(axis=0) + 1e-3).astype(np.float32)
    mlp = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=max_iter, random_state=seed,
                        batch_size=256, learning_rate_init=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit((x - mean) / scale, y)
    report("features", 2, 3)
    layers = tuple((np.asarray(w, np.float32), np.asarray(b, np.float32))
                   for w, b in zip(mlp.coefs_, mlp.intercepts_, strict=True))
    det = NoveltyDetector(kind, mean, scale, layers, 0.5, graph=graph)

    def prob(data: ArrayLike) -> NDArray[np.float64]:
        px = as_pixels(data, np.float32)
        return np.concatenate([det.probability(px[i:i + 1024], estimator.scores(px[i:i + 1024]))
                               for i in range(0, len(px), 1024)]) if len(px) else np.zeros(0)

    cal = {name: prob(v) for name, v in calibration.items()}
    # the lowest threshold flagging at most the target share of every calibration set
    threshold = max(float(np.quantile(p, 1 - targets[name], method="higher")) for name, p in cal.items())
    threshold = min(max(threshold, 1e-6), 1 - 1e-9)
    det.threshold = threshold
    op: dict[str, Any] = {
        "false_alarm_rate": max(float((p > threshold).mean()) for p in cal.values()),
        "false_alarm_by_set": {name: float((p > threshold).mean()) for name, p in cal.items()},
        "calibration_sizes": {name: len(p) for name, p in cal.items()},
        "targets": targets,
    }
    if validation:
        op["flagged_by_set"] = {name: float((prob(v) > threshold).mean()) for name, v in validation.items()}
    report("features", 3, 3)
    det.card = {"version": FORMAT_VERSION, "kind": kind, "threshold": threshold, "operating_point": op,
                "fit": {"positives": len(pos), "negatives": len(neg), "hidden": hidden, "alpha": alpha,
                        "max_iter": max_iter, "seed": seed, "epochs_run": int(mlp.n_iter_)},
                "model_fingerprint": model_fingerprint}
    return det


# --------------------------------------------------------------------------- files


def save_detector(det: NoveltyDetector, model_dir: str | os.PathLike[str]) -> Path:
    """Write ``novelty.safetensors`` and ``novelty.json`` into the model folder (atomically, each)."""
    from safetensors.numpy import save

    folder = Path(model_dir)
    arrays: dict[str, np.ndarray] = {"mean": det.mean, "scale": det.scale}
    for i, (w, b) in enumerate(det.layers):
        arrays[f"layer{i}.weight"], arrays[f"layer{i}.bias"] = w, b
    if det.graph is not None:
        arrays["features.onnx"] = np.frombuffer(det.graph, dtype=np.uint8)
    card = dict(det.card) | {"version": FORMAT_VERSION, "kind": det.kind, "threshold": det.threshold,
                             "layers": len(det.layers)}
    atomic_write_bytes(folder / DETECTOR_ARRAYS, save({k: np.ascontiguousarray(v) for k, v in arrays.items()}))
    atomic_write_bytes(folder / DETECTOR_CARD, (json.dumps(card, indent=2) + "\n").encode())
    return folder


@dataclass(frozen=True)
class DetectorInfo:
    """Whether a model can tell a digit from something else, and at what operating point.

    Attributes
    ----------
    can_tell : bool
    false_alarm_rate : float or None
        Measured share of real digits (held out from fitting) flagged by mistake.
    reason : str or None
        Why it cannot tell (no detector, or one fitted for other weights).
    """

    can_tell: bool
    false_alarm_rate: float | None = None
    reason: str | None = None


def _read_card(folder: Path) -> dict[str, Any] | None:
    path = folder / DETECTOR_CARD
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{DETECTOR_CARD} is unreadable: {exc}") from None
    if not isinstance(card, dict) or card.get("version") != FORMAT_VERSION:
        raise ModelError(f"{DETECTOR_CARD} is not a version-{FORMAT_VERSION} detector card")
    return card


def detector_info(model_dir: str | os.PathLike[str], name: str = "MODEL") -> DetectorInfo:
    """What ``GET /v1/models`` says of a model's detector (reads the card and the weights' fingerprint)."""
    folder = Path(model_dir)
    try:
        card = _read_card(folder)
    except ModelError as exc:
        return DetectorInfo(False, reason=str(exc))
    if card is None:
        return DetectorInfo(False, reason=f"no not-a-digit detector; fit one with 'digitlab novelty fit {name}'")
    stale = _stale(card, folder, name)
    if stale:
        return DetectorInfo(False, reason=stale)
    op = card.get("operating_point", {})
    far = op.get("false_alarm_rate")
    return DetectorInfo(True, float(far) if far is not None else None)


_FINGERPRINTS: dict[tuple[str, float, int], str] = {}


def _cached_fingerprint(folder: Path) -> str:
    from digitlab.models.io import WEIGHTS_FILE

    st = (folder / WEIGHTS_FILE).stat()
    key = (str(folder), st.st_mtime, st.st_size)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = fingerprint(folder)
    return _FINGERPRINTS[key]


def _stale(card: dict[str, Any], folder: Path, name: str) -> str | None:
    want = card.get("model_fingerprint")
    try:
        have = _cached_fingerprint(folder)
    except OSError:
        return None
    if want and want != have:
        return (f"the not-a-digit detector was fitted for other weights of this model; refit it with "
                f"'digitlab novelty fit {name}'")
    return None


def load_detector(model_dir: str | os.PathLike[str], name: str = "MODEL") -> NoveltyDetector | None:
    """The detector stored in a model folder, or None when there is none or it is stale.

    Raises
    ------
    ModelError
        The detector's files are corrupt.
    """
    from safetensors.numpy import load_file

    folder = Path(model_dir)
    card = _read_card(folder)
    if card is None or _stale(card, folder, name):
        return None
    try:
        arrays = load_file(str(folder / DETECTOR_ARRAYS))
        n = int(card["layers"])
        layers = tuple((arrays[f"layer{i}.weight"].astype(np.float32), arrays[f"layer{i}.bias"].astype(np.float32))
                       for i in range(n))
        graph = arrays["features.onnx"].tobytes() if "features.onnx" in arrays else None
        det = NoveltyDetector(card["kind"], arrays["mean"].astype(np.float32), arrays["scale"].astype(np.float32),
                              layers, float(card["threshold"]), card=card, graph=graph)
    except Exception as exc:  # safetensors, ONNX Runtime (a corrupt graph), a card that does not fit the arrays
        raise ModelError(f"the not-a-digit detector of {name!r} is unusable: {type(exc).__name__}: {exc}") from None
    return det


# --------------------------------------------------------------------------- the data sets of a fit


def _render_pen(strokes: Sequence[Sequence[np.ndarray]], rng: np.random.Generator | None) -> NDArray[np.uint8]:
    from digitlab.pen import render_digits

    return render_digits(strokes, rng=rng) if rng is not None else render_digits(strokes)


def training_sets(mnist_train: tuple[np.ndarray, np.ndarray], pen: PenDigits | None, *, seed: int = 0,
                  n_mnist: int = 15000, n_negatives: int = 16000, quick: bool = False) -> _Sets:
    """The positives, negatives, calibration and validation sets of :func:`fit_novelty`.

    MNIST training digits (a random ``n_mnist`` fitted on, the next 5,000 for
    the threshold), pen digits of :data:`FIT_WRITERS` (drawn centred and at
    random placements) and of :data:`CALIBRATION_WRITERS` (the threshold), and
    ``n_negatives`` negatives of fit fonts; the validation negatives use the
    held-out fonts and another seed. ``quick`` makes every set ~20x smaller.
    """
    from digitlab import negatives as neg

    rng = np.random.default_rng(seed)
    images, _ = mnist_train
    if quick:
        n_mnist, n_negatives = max(200, n_mnist // 20), max(200, n_negatives // 20)
    order = rng.permutation(len(images))
    n_cal = 250 if quick else 5000
    fit_rows, cal_rows = order[:n_mnist], order[n_mnist:n_mnist + n_cal]
    pos = [images[fit_rows]]
    cal = {"mnist": images[cal_rows]}
    pen_fit: list[list[np.ndarray]] = []
    if pen is not None:
        idx_fit = np.flatnonzero(np.isin(pen.writers, FIT_WRITERS))
        idx_cal = np.flatnonzero(np.isin(pen.writers, CALIBRATION_WRITERS))
        if quick:
            idx_fit, idx_cal = idx_fit[::20], idx_cal[::5]
        pen_fit = [pen.strokes[i] for i in idx_fit]
        pen_cal = [pen.strokes[i] for i in idx_cal]
        pos += [_render_pen(pen_fit, None), _render_pen(pen_fit, rng)]
        cal["pen"] = np.concatenate([_render_pen(pen_cal, None), _render_pen(pen_cal, rng)])
    share = {"letter": 0.3, "shape": 0.25, "scribble": 0.2, "pair": 0.25}
    counts = {k: round(v * n_negatives) for k, v in share.items()}
    negatives, _ = neg.make_negatives(counts, rng, pen_digits=pen_fit, images=images[fit_rows])
    vrng = np.random.default_rng(seed + 1)
    m = max(50, n_negatives // 40)
    validation = {"letter": neg.letters(m, vrng, neg.HELD_OUT_FONTS), "shape": neg.shapes(m, vrng),
                  "scribble": neg.scribbles(m, vrng), "pair": neg.image_pairs(images[cal_rows], m, vrng)}
    return _Sets(np.concatenate(pos), negatives, cal, validation)


def default_pen_file(data_dir: str | os.PathLike[str]) -> Path | None:
    """The pen digits beside the MNIST folder (``<data_dir>/../pendigits/pendigits-orig.tra.gz``), if there."""
    path = Path(data_dir).parent / "pendigits" / "pendigits-orig.tra.gz"
    return path if path.is_file() else None


@dataclass(frozen=True)
class NoveltyFit:
    """What :func:`fit_novelty` made: the detector and the folder it was saved in."""

    model: str
    path: Path
    detector: NoveltyDetector


def fit_novelty(model: str, *, models_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str],
                pen_file: str | os.PathLike[str] | None = None, seed: int = 0, quick: bool = False,
                dry_run: bool = False, progress: Callable[..., None] | None = None) -> NoveltyFit:
    """Fit the not-a-digit detector of a saved model and store it in the model's folder.

    What ``digitlab novelty fit NAME`` does; run it again whenever the model's
    weights change (a retrained bundled model): a detector of other weights is
    not used.

    Parameters
    ----------
    model : str
        A model name (``default`` is the bundled model) or a model folder.
    models_dir, data_dir : path-like
        The saved models; MNIST.
    pen_file : path-like, optional
        UNIPEN pen digits; default :func:`default_pen_file` (fits without pen digits when absent).
    seed : int, default=0
    quick : bool, default=False
        Sets ~20x smaller (tests, a first look).
    dry_run : bool, default=False
        Fit and measure, but save nothing.

    Raises
    ------
    NotFoundError
        No such model, or MNIST absent.
    """
    from digitlab.data import load_mnist, read_unipen
    from digitlab.models.io import load_model, model_path

    folder = Path(model) if Path(model).is_dir() else model_path(model, models_dir)
    name = folder.name if Path(model).is_dir() else model
    loaded = load_model(folder, name=name)
    pen_path = Path(pen_file) if pen_file is not None else default_pen_file(data_dir)
    pen = read_unipen(pen_path) if pen_path is not None else None
    sets = training_sets(load_mnist(data_dir, "train"), pen, seed=seed, quick=quick)
    targets = {"mnist": 0.003, "pen": 0.015}
    det = fit_detector(loaded.estimator, sets.positives, sets.negatives, sets.calibration,
                       validation=sets.validation, target_false_alarm={k: v for k, v in targets.items()
                                                                       if k in sets.calibration},
                       seed=seed, max_iter=30 if quick else 80, model_fingerprint=fingerprint(folder),
                       progress=progress)
    det.card["data"] = {"pen_file": pen_path.name if pen_path else None, "quick": quick,
                        "fit_writers": list(FIT_WRITERS) if pen else [],
                        "calibration_writers": list(CALIBRATION_WRITERS) if pen else []}
    if not dry_run:
        save_detector(det, folder)
    return NoveltyFit(name, folder, det)


def not_a_digit(loaded: LoadedModel, X: ArrayLike) -> NDArray[np.bool_] | None:
    """``not_a_digit`` of each input for a loaded model, or None when it cannot tell (no current detector).

    What ``digitlab predict`` prints as "that doesn't look like a digit".

    Parameters
    ----------
    loaded : LoadedModel
    X : array-like of shape (n, 784) or (n, 28, 28)
        Normalised inputs (pixel intensities 0-255).
    """
    det = load_detector(loaded.path, loaded.name)
    if det is None:
        return None
    from digitlab.models.base import as_pixels

    pixels = as_pixels(X, np.float32)
    return det.flags(pixels, loaded.estimator.scores(pixels))


class _Detecting:
    """A fitted classifier that also answers ``not_a_digit(X)`` (the hook :func:`digitlab.predict.not_a_digit`
    asks for); every other attribute is the classifier's own."""

    def __init__(self, estimator: DigitClassifier, detector: NoveltyDetector) -> None:
        self._estimator = estimator
        self._detector = detector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._estimator, name)

    def not_a_digit(self, X: ArrayLike) -> NDArray[np.bool_]:
        from digitlab.models.base import as_pixels

        pixels = as_pixels(X, np.float32)
        return self._detector.flags(pixels, self._estimator.scores(pixels))


class _DetectingPredictor:
    """A CNN's ONNX export (:class:`digitlab.export.OnnxPredictor`) that also answers ``not_a_digit(X)``, the
    detector reading the logits of the CNN's own int8 graph (what its ``scores`` are): ONNX Runtime and NumPy
    alone, neither scikit-learn nor torch, so ``digitlab predict`` keeps its fast start."""

    def __init__(self, predictor: OnnxPredictor, logits: _Graph, detector: NoveltyDetector) -> None:
        self._predictor = predictor
        self._logits = logits
        self._detector = detector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._predictor, name)

    def not_a_digit(self, X: ArrayLike) -> NDArray[np.bool_]:
        from digitlab.models.cnn.inputs import standardised

        pixels = np.asarray(X, dtype=np.float32)
        pixels = pixels.reshape(len(pixels), -1)
        logits = self._logits.run(standardised(pixels)).astype(np.float64)
        return self._detector.flags(pixels, logits)


def _int8_logits(model_dir: Path) -> _Graph | None:
    """The int8 graph a saved CNN's ``scores`` run (``int8.onnx`` in its weights), or None when it has none."""
    from safetensors import safe_open

    from digitlab.models.io import WEIGHTS_FILE

    try:
        card = json.loads((model_dir / "card.json").read_text())
        if card.get("model") != "cnn" or not card.get("params", {}).get("int8", True):
            return None
        with safe_open(str(model_dir / WEIGHTS_FILE), framework="numpy") as f:
            if "int8.onnx" not in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                return None
            return _Graph(np.asarray(f.get_tensor("int8.onnx"), dtype=np.uint8).tobytes())
    except Exception:  # an unreadable card or weights, a graph ONNX Runtime refuses: the estimator's path
        return None


def load_with_detector(model_dir: str | os.PathLike[str], name: str = "MODEL") -> Any | None:
    """The model of a folder answering ``not_a_digit(X)`` too, or None when the folder has no current detector.

    ``digitlab predict`` takes it before the folder's ONNX export, whose graph holds no detector. For a CNN
    with a current export (the bundled model ships with one) it is that export, with the detector fed by the
    CNN's int8 graph: neither scikit-learn nor torch is imported.
    """
    from digitlab.export import load_predictor

    det = load_detector(model_dir, name)
    if det is None:
        return None
    folder = Path(model_dir)
    if det.kind == "cnn_features":
        predictor = load_predictor(folder)
        logits = _int8_logits(folder) if predictor is not None else None
        if predictor is not None and logits is not None:
            return _DetectingPredictor(predictor, logits, det)
    from digitlab.models.io import load_model

    return _Detecting(load_model(folder, name=name).estimator, det)
