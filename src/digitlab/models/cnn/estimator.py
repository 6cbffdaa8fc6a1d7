"""The CNN as a digitlab estimator: :class:`CNNClassifier`.

Training: AdamW with a one-cycle schedule (linear warm-up, cosine decay),
label smoothing, bfloat16 autocast where the CPU supports it natively, and
batched augmentation on the CPU (:func:`digitlab.models.cnn.net.augment`).
With ``checkpoint_dir`` a checkpoint is written after every epoch
(:mod:`digitlab.models.cnn.checkpoint`) and ``resume=True`` continues from the
last completed epoch with the same weights as an uninterrupted run.

Predictions run on an int8 copy of the network (:mod:`digitlab.models.cnn._int8`)
made at the end of ``fit``; integrated gradients are taken of the float
network.

Without torch (``pip install digitlab`` without the ``train`` extra), a
saved CNN loads and predicts from its int8 graph with ONNX Runtime alone:
torch is imported only by what needs the float network (``fit``,
:meth:`CNNClassifier.quantize`, ``int8=False``, integrated gradients), and
each of those raises :class:`~digitlab.errors.MissingExtraError` naming the
extra to install when torch is missing. :func:`digitlab.explain.explain`
then explains by occlusion on the int8 graph instead.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_is_fitted

from digitlab.errors import ParameterError, require_torch
from digitlab.models._linear import ScoredClassifier, class_index
from digitlab.models._validation import check_choice, check_int, check_number, fit_data, predict_data
from digitlab.models.base import ProgressFn, encode_labels
from digitlab.models.cnn._int8 import Int8Graph, export_int8  # torch is imported only by export_int8's call
from digitlab.models.cnn._threads import auto_threads, inference_threads, torch_threads
from digitlab.models.cnn.inputs import standardised

if TYPE_CHECKING:
    import torch

    from digitlab.models.cnn.checkpoint import History
    from digitlab.models.cnn.net import DigitNet

#: Builds of the float network from loaded weights: one at a time.
_BUILD = threading.Lock()

__all__ = ["RECIPES", "CNNClassifier", "Config"]

#: Defaults that each recipe gives to the parameters left as ``None``: ``"fast"`` (a quick network, no
#: augmentation) and ``"default"`` (the bundled model's; docs/cnn.md tells how it was chosen).
RECIPES: dict[str, dict[str, int | float | str]] = {
    "fast": {"width": 16, "depth": 1, "epochs": 2, "lr": 4e-3, "augment": "none", "dropout": 0.0},
    "default": {"width": 32, "depth": 2, "epochs": 24, "lr": 3e-3, "augment": "elastic", "dropout": 0.1},
    # fine-tuning a fitted network (``fit(..., init=...)``): a few epochs at a tenth of the learning rate
    "finetune": {"width": 32, "depth": 2, "epochs": 2, "lr": 3e-4, "augment": "elastic", "dropout": 0.1},
}


class _NetShape(TypedDict):
    """What builds a loaded model's network: the card's width, dropout and depth."""

    width: int
    dropout: float
    depth: int


class Config(TypedDict):
    """The effective hyper-parameters of a fit (``config_``): the recipe's, overridden by the set parameters."""

    width: int
    depth: int
    epochs: int
    lr: float
    augment: str
    dropout: float
    batch_size: int
    weight_decay: float
    label_smoothing: float
    warmup: float
    seed: int


class CNNClassifier(ScoredClassifier):
    """Convolutional network for 28x28 digits (PyTorch, CPU).

    Parameters
    ----------
    recipe : {"fast", "default", "finetune"}, default="default"
        Gives the values of the parameters left as ``None`` (see :data:`RECIPES`); ``"finetune"`` is
        for ``fit(..., init=...)``.
    epochs : int, optional
    batch_size : int, default=128
    lr : float, optional
        Peak learning rate of the one-cycle schedule (AdamW).
    weight_decay : float, default=0.02
    width : int, optional
        Channels of the first conv block (then 2x and 4x).
    depth : int, optional
        Convolutions in the second and third blocks.
    dropout : float, optional
    augment : {"none", "affine", "elastic"}, optional
    label_smoothing : float, default=0.1
    warmup : float, default=0.15
        Fraction of the steps spent warming the learning rate up.
    bf16 : bool, optional
        bfloat16 autocast for training, integrated gradients and predictions
        without ``int8`` (faster, the same accuracy); default: when the CPU
        supports it natively.
    int8 : bool, default=True
        Predict with an 8-bit copy of the network (ONNX Runtime; see
        :meth:`quantize`), made at the end of ``fit``: faster than PyTorch,
        alone or batched, at the same test accuracy. ``False`` predicts with
        PyTorch (so does a fit whose int8 copy fails: it warns and keeps the network).
    n_threads : int, optional
        Torch threads for training; default: 2 on an idle machine, 1 when others run.
    seed : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    net_ : DigitNet
        The trained network (eval mode).
    config_ : Config
        The effective hyper-parameters.
    history_ : list of dict
        Per epoch: loss, accuracy (on the augmented training batches), seconds.
    int8_graph_ : bytes
        The quantized ONNX graph (only with ``int8``).
    n_features_in_ : int

    Notes
    -----
    ``predict_proba`` is the softmax of the logits (``scores``). Predictions
    and explanations only read the fitted network, so one model may serve
    several threads; the torch thread count they set is process-wide.
    """

    family = "cnn"
    explanation = "integrated_gradients"
    thread_safe = True
    proba_is_softmax = True
    fit_progress = True
    fit_checkpoints = True
    fit_init = True

    config_: Config
    history_: History
    int8_graph_: bytes
    n_features_in_: int
    _net_arrays: dict[str, NDArray[Any]]   # a loaded model's weights, until the network is built
    _net_shape: _NetShape

    def __init__(self, recipe: str = "default", epochs: int | None = None, batch_size: int = 128,
                 lr: float | None = None, weight_decay: float = 0.02, width: int | None = None,
                 depth: int | None = None, dropout: float | None = None, augment: str | None = None,
                 label_smoothing: float = 0.1,
                 warmup: float = 0.15, bf16: bool | None = None, int8: bool = True, n_threads: int | None = None,
                 seed: int = 0) -> None:
        self.recipe = recipe
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.width = width
        self.depth = depth
        self.dropout = dropout
        self.augment = augment
        self.label_smoothing = label_smoothing
        self.warmup = warmup
        self.bf16 = bf16
        self.int8 = int8
        self.n_threads = n_threads
        self.seed = seed

    # ------------------------------------------------------------------ config
    def _config(self) -> Config:
        """The effective hyper-parameters: the recipe's defaults overridden by the set parameters.

        Raises
        ------
        ParameterError
            A parameter breaks its rule (the message states it and the value seen).
        """
        from digitlab.models.cnn.net import AUGMENTS

        recipe = RECIPES[check_choice("recipe", self.recipe, RECIPES)]

        def pick(name: str) -> object:
            value = getattr(self, name)
            return recipe[name] if value is None else value

        if self.n_threads is not None:
            check_int("n_threads", self.n_threads, 1)
        if self.bf16 is not None and not isinstance(self.bf16, (bool, np.bool_)):
            raise ParameterError(f"bf16 must be None, True or False, got {self.bf16!r}")
        return Config(
            width=check_int("width", pick("width"), 1, 512),
            depth=check_int("depth", pick("depth"), 1, 4),
            epochs=check_int("epochs", pick("epochs"), 1),
            lr=check_number("lr", pick("lr"), 0, low_open=True),
            augment=check_choice("augment", pick("augment"), AUGMENTS),
            dropout=check_number("dropout", pick("dropout"), 0, 1, high_open=True),
            batch_size=check_int("batch_size", self.batch_size, 1),
            weight_decay=check_number("weight_decay", self.weight_decay, 0),
            label_smoothing=check_number("label_smoothing", self.label_smoothing, 0, 1, high_open=True),
            warmup=check_number("warmup", self.warmup, 0, 1, high_open=True),
            seed=check_int("seed", self.seed))

    # --------------------------------------------------------------------- fit
    def fit(self, X: ArrayLike, y: ArrayLike, *, views: ArrayLike | None = None, progress: ProgressFn | None = None,
            checkpoint_dir: str | os.PathLike[str] | None = None, resume: bool = False,
            init: CNNClassifier | None = None) -> CNNClassifier:
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
            Pixel intensities 0-255.
        y : array-like of shape (n_samples,)
        views : array-like of uint8, shape (n_views, n_samples, 784) or (n_views, n_samples, 28, 28), optional
            Other versions of each training image, on the scale of ``X``: an MNIST
            digit redrawn with a constant pen, another render of a pen-drawn digit
            (:func:`digitlab.models.cnn.drawn.drawn_training_set` makes them).
            Each time an image is put in a batch, it or one of its views is
            taken, uniformly at random, before the augmentation.
        progress : callable, optional
            ``progress(key, completed, total, **info)``: key ``"batch"`` after
            every batch (running ``loss`` and ``accuracy`` of the epoch) and
            ``"epoch"`` after every epoch (``loss``, ``accuracy``, ``seconds``).
        checkpoint_dir : path-like, optional
            Folder for a checkpoint written after every epoch.
        resume : bool, default=False
            Continue from the checkpoint in ``checkpoint_dir`` (it must come from
            the same parameters and data); without one, start afresh.
        init : CNNClassifier, optional
            A fitted CNN to start from (fine-tuning, e.g. with ``recipe="finetune"``):
            its network's width and depth, and its weights; the other
            hyper-parameters are this estimator's. The labels must be its classes.

        Returns
        -------
        self

        Raises
        ------
        ParameterError
            A bad parameter, ``resume`` without ``checkpoint_dir``, images that are not 28x28, or an ``init``
            that is not a fitted CNN of the same classes (and of the width and depth set, if set).
        UserError
            The checkpoint to resume from is unreadable or from another run.
        MissingExtraError
            torch is not installed (``pip install 'digitlab[train]'``).
        """
        torch = require_torch("training the CNN")
        from digitlab.models.cnn.checkpoint import fingerprint, has_checkpoint, load_checkpoint, save_checkpoint
        from digitlab.models.cnn.net import DigitNet, channels_last, to_tensor

        cfg = self._config()
        if resume and checkpoint_dir is None:
            raise ParameterError("resume=True needs a checkpoint_dir")
        pixels, labels_in = fit_data(self, X, y, np.float32)
        self.classes_, y_idx = encode_labels(labels_in)
        if pixels.shape[1] != 784:
            raise ParameterError(f"the CNN needs 28x28 images (784 pixels), got {pixels.shape[1]} feature(s)")
        if self.input_scale_ == "features":
            raise ParameterError(f"the CNN needs pixel images (0-255 or 0-1), got values from {pixels.min():g} to "
                                 f"{pixels.max():g}")
        view_images = None
        if views is not None:
            v = np.asarray(views)
            v = v.reshape(v.shape[0], v.shape[1], -1) if v.ndim == 4 else v
            if v.ndim != 3 or v.shape[1:] != pixels.shape:
                raise ParameterError(f"views must have shape (n_views, {pixels.shape[0]}, 784), got {v.shape}")
            if self.input_scale_ == "0-1":
                v = np.rint(v * 255.0)
            view_images = torch.from_numpy(np.ascontiguousarray(v, dtype=np.uint8)).view(v.shape[0], -1, 1, 28, 28)
        if init is not None:
            cfg = _from_init(cfg, init, self.classes_, width=self.width, depth=self.depth)
        key = fingerprint(pixels, y_idx, cfg)
        if view_images is not None:
            key = hashlib.sha256((key + hashlib.sha256(view_images.numpy().tobytes()).hexdigest()).encode()).hexdigest()
        use_bf16 = self._use_bf16()
        report: ProgressFn = progress or (lambda *a, **k: None)
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None

        with torch.random.fork_rng(devices=[]), torch_threads(self.n_threads or auto_threads()):
            torch.manual_seed(cfg["seed"])
            net = channels_last(DigitNet(cfg["width"], cfg["dropout"], len(self.classes_), cfg["depth"]))
            if init is not None:
                net.load_state_dict(init.net_.state_dict())
            opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
            start_epoch = 0
            history: History = []
            if resume and ckpt is not None and has_checkpoint(ckpt):
                start_epoch, history = load_checkpoint(ckpt, net, opt, key, cfg["epochs"])
            images = to_tensor(pixels)                             # (n, 1, 28, 28) in [0, 1]
            labels = torch.from_numpy(y_idx.astype(np.int64))      # (n,)
            for epoch in range(start_epoch, cfg["epochs"]):
                history.append(_train_epoch(net, opt, images, labels, cfg, epoch, use_bf16, report, view_images))
                if ckpt is not None:
                    save_checkpoint(ckpt, net, opt, epoch + 1, history, key)
                last = history[-1]
                report("epoch", epoch + 1, cfg["epochs"], loss=last["loss"], accuracy=last["accuracy"],
                       seconds=last["seconds"])
        self.net_ = net.eval()
        self.history_ = history
        self.config_ = cfg
        if hasattr(self, "int8_graph_"):
            del self.int8_graph_  # a graph of the previous fit's network
        if self.int8:
            try:
                self.quantize(pixels)
            except Exception as exc:
                warnings.warn(f"the int8 copy of the network could not be made ({type(exc).__name__}: {exc}); "
                              "predictions use PyTorch", RuntimeWarning, stacklevel=2)
        return self

    def quantize(self, X: ArrayLike, n_calibration: int = 1024) -> CNNClassifier:
        """Make the 8-bit copy of the network that predictions use (``int8_graph_``).

        Weights are quantized per channel; each activation's range is measured
        on ``n_calibration`` images of ``X`` taken evenly (the same ones for
        the same ``X``, so the graph is reproducible). ``fit`` calls it; call
        it yourself to give a loaded model a graph (or a new one).

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
            Training images, pixel intensities 0-255.
        n_calibration : int, default=1024

        Returns
        -------
        self

        Raises
        ------
        MissingExtraError
            torch is not installed: the graph is exported from the float network.
        """
        require_torch("making the CNN's int8 graph")

        pixels = self._pixels(X)
        rows = np.unique(np.linspace(0, len(pixels) - 1, min(len(pixels), n_calibration)).astype(np.int64))
        calibration = standardised(pixels[rows])                                       # (m, 1, 28, 28)
        with torch_threads(self.n_threads or 1):
            self.int8_graph_ = export_int8(self._inference_net(), calibration)
        return self

    # --------------------------------------------------------------- inference
    def scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """Logits, shape (n_samples, n_classes); ``decision_function`` is the same but for two classes
        (the margin, shape (n_samples,)), and ``predict_proba`` is their softmax."""
        return self._logits(X)

    def _pixels(self, X: ArrayLike) -> NDArray[np.float32]:
        """``X`` checked against the fitted model, as (n, 784) float32 pixels 0-255."""
        check_is_fitted(self)
        pixels = predict_data(self, X, np.float32)
        return pixels

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once ``fit`` trained a network or ``from_state`` loaded one (built only when first needed)."""
        return "_net" in self.__dict__ or "_net_arrays" in self.__dict__

    @property
    def net_(self) -> DigitNet:
        """The trained network (eval mode); a loaded model builds it from its weights on first use (needs torch).

        Raises
        ------
        AttributeError
            Not fitted.
        MissingExtraError
            torch is not installed.
        ModelError
            The saved weights do not fit the network the card describes.
        """
        net: DigitNet | None = self.__dict__.get("_net")
        if net is not None:
            return net
        if "_net_arrays" not in self.__dict__:
            raise AttributeError("net_")
        torch = require_torch("the CNN's float network (integrated gradients, int8=False, a new int8 graph)")
        from digitlab.errors import ModelError
        from digitlab.models.cnn.net import DigitNet, channels_last

        with _BUILD:
            built: DigitNet | None = self.__dict__.get("_net")
            if built is None:
                shape = self._net_shape
                built = DigitNet(shape["width"], shape["dropout"], len(self.classes_), shape["depth"])
                state = {k: torch.from_numpy(np.array(v)) for k, v in self._net_arrays.items()}
                try:
                    built.load_state_dict(state, strict=True)
                except RuntimeError as exc:
                    raise ModelError(f"the CNN's weights do not fit its card: {str(exc).splitlines()[0]}") from None
                built = self.__dict__["_net"] = channels_last(built).eval()
        return built

    @net_.setter
    def net_(self, net: DigitNet) -> None:
        self.__dict__["_net"] = net
        self.__dict__.pop("_net_arrays", None)

    def _net_state(self) -> dict[str, NDArray[Any]]:
        """The network's weights as NumPy arrays, by ``state_dict`` key (without building a loaded network)."""
        if "_net" not in self.__dict__ and "_net_arrays" in self.__dict__:
            return dict(self._net_arrays)
        return {k: v.detach().contiguous().numpy() for k, v in self.net_.state_dict().items()}

    def _logits(self, X: ArrayLike, batch: int = 2048) -> NDArray[np.float64]:
        pixels = self._pixels(X)
        empty = np.zeros((0, len(self.classes_)))
        graph = self._int8_graph()
        if graph is not None:
            runs = [graph.run(standardised(pixels[i:i + batch])) for i in range(0, len(pixels), batch)]
            return np.concatenate(runs).astype(np.float64) if runs else empty
        torch = require_torch("predicting with the CNN's float network (int8=False, or a model without an int8 graph)")
        from digitlab.models.cnn.net import standardise, to_tensor

        out, net = [], self._inference_net()
        use_bf16 = self._use_bf16()  # whatever the batch: same answers
        with torch.inference_mode(), torch_threads(inference_threads(len(pixels))), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            for i in range(0, len(pixels), batch):
                xb = standardise(to_tensor(pixels[i:i + batch])).contiguous(memory_format=torch.channels_last)
                out.append(net(xb).float().numpy())                               # (b, n_classes)
        return np.concatenate(out).astype(np.float64) if out else empty

    def _use_bf16(self) -> bool:
        """Whether to autocast to bfloat16: ``bf16``, or when it is None, whether the CPU supports it natively."""
        return _bf16_supported() if self.bf16 is None else bool(self.bf16)

    def _inference_net(self) -> DigitNet:
        """``net_`` with each BatchNorm folded into its convolution (same outputs, one pass fewer per layer)."""
        from digitlab.models.cnn.net import fold_batchnorm

        cached: tuple[DigitNet, DigitNet] | None = getattr(self, "_folded", None)
        if cached is None or cached[0] is not self.net_:
            cached = self._folded = (self.net_, fold_batchnorm(self.net_))
        return cached[1]

    def _int8_graph(self) -> Int8Graph | None:
        """The ONNX Runtime runner of ``int8_graph_`` (made once), or None to predict with PyTorch."""
        graph: bytes | None = getattr(self, "int8_graph_", None)
        if not self.int8 or graph is None:
            return None
        runner: Int8Graph | None = getattr(self, "_int8", None)
        if runner is None or runner.graph is not graph:
            runner = self._int8 = Int8Graph(graph)
        return runner

    def integrated_gradients(self, X: ArrayLike, digit: int, steps: int = 32) -> NDArray[np.float64]:
        """Integrated gradients of the ``digit`` logit from a black baseline.

        The path integral is a midpoint Riemann sum with ``steps`` points, all
        in one forward/backward pass per image; the map sums (up to that
        approximation) to ``logit(x) - logit(black)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
        digit : int
            A label of ``classes_``.
        steps : int, default=32
            More steps approximate the integral better and cost proportionally more.

        Returns
        -------
        ndarray of shape (n_samples, 784)
            Contributions on the logit scale.

        Raises
        ------
        MissingExtraError
            torch is not installed (:func:`digitlab.explain.explain` then uses occlusion on the int8 graph).
        """
        torch = require_torch("integrated gradients of the CNN")
        from digitlab.models.cnn.net import standardise, to_tensor

        pixels = self._pixels(X)
        k = class_index(self.classes_, digit)
        alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps             # (steps,)
        black = standardise(torch.zeros(1, 1, 28, 28))                                # (1, 1, 28, 28)
        out, net = np.empty((len(pixels), 784), dtype=np.float64), self._inference_net()
        use_bf16 = self._use_bf16()
        with torch_threads(1):
            for i in range(len(pixels)):
                x = standardise(to_tensor(pixels[i:i + 1]))                                 # (1, 1, 28, 28)
                path = (black + alphas.view(-1, 1, 1, 1) * (x - black)).requires_grad_(True)  # (steps, 1, 28, 28)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                    logit = net(path.contiguous(memory_format=torch.channels_last))[:, k].float().sum()
                (grad,) = torch.autograd.grad(logit, path)                              # (steps, 1, 28, 28)
                out[i] = ((x - black) * grad.mean(0, keepdim=True)).reshape(-1).numpy()
        return out

    # ------------------------------------------------------------ persistence
    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        check_is_fitted(self)
        arrays = {f"net.{k}": v for k, v in self._net_state().items()}
        arrays["classes"] = np.asarray(self.classes_)
        if getattr(self, "int8_graph_", None) is not None:
            arrays["int8.onnx"] = np.frombuffer(self.int8_graph_, dtype=np.uint8)
        meta = {"n_features_in": int(self.n_features_in_), "width": int(self.config_["width"]),
                "depth": int(self.config_.get("depth", 1)),
                "dropout": float(self.config_["dropout"]), "config": self.config_, "history": self.history_}
        return arrays, meta

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, NDArray[Any]],
                   meta: dict[str, Any]) -> CNNClassifier:
        est = cls(**params)
        est.classes_ = np.asarray(arrays["classes"])
        est.n_features_in_ = int(meta["n_features_in"])
        est.config_ = cast(Config, dict(meta.get("config", {})))  # as get_state wrote it
        est.history_ = list(meta.get("history", []))
        est._net_shape = _NetShape(width=int(meta["width"]), dropout=float(meta["dropout"]),
                                   depth=int(meta.get("depth", 1)))
        est._net_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("net.")}
        _check_net_arrays(est._net_arrays, est._net_shape["width"], len(est.classes_))
        if "int8.onnx" in arrays:
            est.int8_graph_ = np.asarray(arrays["int8.onnx"], dtype=np.uint8).tobytes()
            est._int8 = Int8Graph(est.int8_graph_)  # a corrupt graph fails here, at load, not at the first request
        return est


def _from_init(cfg: Config, init: object, classes: NDArray[Any], *, width: int | None,
               depth: int | None) -> Config:
    """``cfg`` with the width and depth of the network ``fit(..., init=init)`` starts from.

    Raises
    ------
    ParameterError
        ``init`` is not a fitted CNN, has other classes, or another width or depth than the ones set.
    """
    if not isinstance(init, CNNClassifier) or not hasattr(init, "net_"):
        raise ParameterError(f"init must be a fitted CNNClassifier, got {type(init).__name__}")
    if not np.array_equal(np.asarray(init.classes_), classes):
        raise ParameterError(f"init was fitted on the classes {np.asarray(init.classes_).tolist()}, the labels "
                             f"have {classes.tolist()}")
    got = {"width": int(init.net_.fc.in_features // 64), "depth": int(init.config_.get("depth", 1))}
    for name, wanted in (("width", width), ("depth", depth)):
        if wanted is not None and wanted != got[name]:
            raise ParameterError(f"{name}={wanted} differs from the {name} of the init network, {got[name]}")
    return cast(Config, {**cfg, **got})


def _check_net_arrays(arrays: dict[str, NDArray[Any]], width: int, n_classes: int) -> None:
    """Refuse weights that cannot be the network the card describes (checked without torch; the rest when built).

    Raises
    ------
    ValueError
        No weights, or a first convolution or last layer of another shape.
    """
    expected = {"features.0.weight": (width, 1, 3, 3), "fc.weight": (n_classes, 16 * 4 * width),
                "fc.bias": (n_classes,)}
    for key, shape in expected.items():
        got = arrays.get(key)
        if got is None or tuple(got.shape) != shape:
            raise ValueError(f"net.{key} should have shape {shape}, got "
                             f"{'nothing' if got is None else tuple(got.shape)}")


def one_cycle_lr(step: int, total: int, peak: float, warmup: float) -> float:
    """The learning rate at ``step`` of ``total``: linear warm-up from peak/25, then cosine decay to ~0."""
    warm = max(1, int(total * warmup))
    if step < warm:
        return peak * (0.04 + 0.96 * step / warm)
    t = (step - warm) / max(1, total - warm)
    return peak * 0.5 * (1 + math.cos(math.pi * t))


def _train_epoch(net: DigitNet, opt: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor,
                 cfg: Config, epoch: int, use_bf16: bool, report: ProgressFn,
                 views: torch.Tensor | None = None) -> dict[str, float]:
    """One pass over the shuffled, augmented training images; returns the epoch's record.

    ``images`` (n, 1, 28, 28) on the 0-1 scale, ``labels`` (n,) class indices,
    ``views`` (v, n, 1, 28, 28) uint8: other versions of each image, one drawn per use.
    """
    import torch
    import torch.nn.functional as F

    from digitlab.models.cnn.net import augment, standardise
    t0 = time.perf_counter()
    n, bs = len(labels), cfg["batch_size"]
    steps_per_epoch = math.ceil(n / bs)
    total_steps = steps_per_epoch * cfg["epochs"]
    net.train()
    order = torch.randperm(n)
    loss_sum, correct, seen = 0.0, 0, 0
    for b in range(steps_per_epoch):
        for group in opt.param_groups:
            group["lr"] = one_cycle_lr(epoch * steps_per_epoch + b, total_steps, cfg["lr"], cfg["warmup"])
        idx = order[b * bs:(b + 1) * bs]
        xb = images[idx]                                                              # (b, 1, 28, 28)
        if views is not None:  # each image, or one of its views (0 = the image itself)
            pick = torch.randint(0, views.shape[0] + 1, (len(idx),))
            other = pick > 0
            if bool(other.any()):
                xb = xb.clone()
                xb[other] = views[pick[other] - 1, idx[other]].float().div_(255.0)
        xb = standardise(augment(xb, kind=cfg["augment"]))                            # (b, 1, 28, 28)
        xb = xb.contiguous(memory_format=torch.channels_last)
        yb = labels[idx]                                                              # (b,)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            logits = net(xb)                                                          # (b, n_classes)
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg["label_smoothing"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += float(loss.detach()) * len(idx)
        correct += int((logits.argmax(1) == yb).sum())
        seen += len(idx)
        report("batch", b + 1, steps_per_epoch, epoch=epoch + 1, loss=loss_sum / seen, accuracy=correct / seen)
    return {"epoch": epoch + 1, "loss": loss_sum / seen, "accuracy": correct / seen,
            "seconds": time.perf_counter() - t0}


@functools.lru_cache(maxsize=1)
def _bf16_supported() -> bool:
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
