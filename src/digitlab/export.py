"""Deployable models: any fitted digitlab classifier as one ONNX file, checked before it is written.

An exported file needs nothing from digitlab (nor scikit-learn, LightGBM or
torch): ONNX Runtime, in Python, C++, C#, Java, JavaScript (onnxruntime-web)
or on a phone, runs it. Every file

* takes ``pixels``: raw 28x28 **uint8** intensities (0 = background, 255 =
  ink), shape ``[N, 784]`` (``layout="flat"``, row-major, the default) or
  ``[N, 1, 28, 28]`` (``layout="image"``); any scaling or standardisation the
  model needs is inside the graph;
* outputs ``probabilities`` (float32 ``[N, n_classes]``, calibrated: equal to
  the estimator's ``predict_proba``) and ``label`` (int64 ``[N]``, the class
  itself: the digit, or 0/1 for the binary ``sgd``);
* carries metadata (``metadata_props``, :data:`METADATA_KEYS`): digitlab
  version, model and family, parameters, classes, MNIST test accuracy, the
  preprocessing it expects, the training data's checksum, the calibration
  temperature and the export check.

Pictures must first be made MNIST-like (white ink on black, the digit's box
scaled into 20x20 and centred by mass in 28x28): :func:`digitlab.preprocess.load_image`
and :func:`digitlab.preprocess.render_strokes` do it in Python.

How each family becomes a graph (the field's converters where they fit):

==========================  ===============================================================
centroid                    squared distances to the class means (``onnx.helper``, float64)
logreg, svm-linear          scikit-learn's ``LogisticRegression``/``LinearSVC`` rebuilt from the
                            saved weights, converted by skl2onnx (raw scores)
sgd                         the same for its one log-odds
svm-rbf, -poly, -sigmoid    scikit-learn's ``PCA`` rebuilt and converted by skl2onnx, then the
                            kernel against the support vectors and libsvm's one-vs-one votes
                            (``onnx.helper``, float64: a vote must not flip on rounding)
trees                       each LightGBM booster by onnxmltools (raw margins), averaged
cnn                         the model's own int8 graph (``precision="int8"``, what it predicts
                            with) or ``torch.onnx`` of the float network (``precision="float"``),
                            behind the MNIST standardisation
dpmm                        binarised pixels, the clusters' log-likelihoods, memberships and
                            label votes of every chain (``onnx.helper``)
==========================  ===============================================================

Every export is checked before it is written (:func:`export_onnx`): the file
and the estimator predict the first 1,000 MNIST test digits (or the images
given), and must give the same labels with probabilities within
:data:`TOLERANCE` (1e-4; 1e-2 for int8). A failed check raises
:class:`ExportCheckError` and writes nothing.

:class:`OnnxPredictor` runs an exported file with ONNX Runtime alone;
:func:`load_predictor` finds a model folder's own export (``model.onnx``),
which ``digitlab predict`` uses so that it imports neither scikit-learn nor torch.

This module imports scikit-learn, onnx and the converters only when exporting.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from digitlab.errors import DigitlabError, UserError

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto, TensorProto
    from onnxruntime import InferenceSession

    from digitlab.models.base import DigitClassifier
    from digitlab.models.card import ModelCard
    from digitlab.settings import Settings

__all__ = [
    "EXPORT_FILE",
    "INPUT",
    "LAYOUTS",
    "METADATA_KEYS",
    "PREPROCESSING",
    "TOLERANCE",
    "CannotExportError",
    "ExportCheck",
    "ExportCheckError",
    "ExportResult",
    "ExportSpec",
    "OnnxPredictor",
    "export_model",
    "export_onnx",
    "load_predictor",
    "onnx_graph",
]

#: The input's name, and the outputs'.
INPUT, PROBABILITIES, LABEL = "pixels", "probabilities", "label"
#: Shapes of ``pixels`` by layout (N is any number of images).
LAYOUTS: dict[str, list[int | str]] = {"flat": ["N", 784], "image": ["N", 1, 28, 28]}
_IMAGE_SHAPE: dict[str, tuple[int, ...]] = {"flat": (784,), "image": (1, 28, 28)}
Layout = Literal["flat", "image"]
Precision = Literal["auto", "float", "int8"]
#: Largest allowed difference between the file's and the estimator's probabilities.
TOLERANCE = {"float": 1e-4, "int8": 1e-2}
#: File name of a model folder's own export (:func:`load_predictor`).
EXPORT_FILE = "model.onnx"
#: Test digits the export is checked on.
N_CHECK = 1000
#: What the input must be, in words (also in every file's metadata).
PREPROCESSING = ("MNIST-style 28x28 uint8: white ink (255) on black (0), the digit's bounding box scaled into "
                 "20x20 and centred by its centre of mass in the 28x28 frame; digitlab.preprocess.load_image "
                 "(pictures) and digitlab.preprocess.render_strokes (canvas strokes) make it.")
#: Keys of every exported file's ``metadata_props``.
METADATA_KEYS = ("digitlab_version", "model", "family", "name", "params", "classes", "input", "layout",
                 "preprocessing", "test_accuracy", "train_sha256", "temperature", "calibration", "precision",
                 "export_check", "weights_sha256", "created")

_OPSET = 17   # of the graphs built here; the CNN's int8 graph keeps its own
_IR = 9


class CannotExportError(UserError):
    """This model cannot be exported (the message says why): exit 2, as the request cannot be met."""


class ExportCheckError(DigitlabError):
    """The exported graph disagrees with the estimator: digitlab's fault, nothing is written (exit 1)."""


@dataclass(frozen=True)
class ExportCheck:
    """How the exported file agreed with the estimator.

    Attributes
    ----------
    n : int
        Images compared.
    labels_equal : int
        Images given the same label by both.
    max_abs_diff : float
        Largest difference of a probability.
    tolerance : float
    accuracy : float or None
        The file's accuracy on the images whose labels the model knows (None without labels).
    """

    n: int
    labels_equal: int
    max_abs_diff: float
    tolerance: float
    accuracy: float | None

    @property
    def passed(self) -> bool:
        """Same labels everywhere and every probability within the tolerance."""
        return self.labels_equal == self.n and self.max_abs_diff <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "labels_equal": self.labels_equal, "max_abs_diff": self.max_abs_diff,
                "tolerance": self.tolerance, "accuracy": self.accuracy, "passed": self.passed}


@dataclass(frozen=True)
class ExportSpec:
    """What :func:`export_model` exports and where.

    Attributes
    ----------
    model : str
        A saved model's name (``default`` is the bundled CNN) or a model folder.
    out : path-like
        The ``.onnx`` file to write.
    layout : {"flat", "image"}, default="flat"
        ``pixels`` as ``[N, 784]`` or ``[N, 1, 28, 28]``.
    precision : {"auto", "float", "int8"}, default="auto"
        The CNN only: its int8 graph (``auto`` when it has one) or the float
        network (needs torch). Other families are float.
    n_check : int, default=1000
        MNIST test digits the export is checked on.
    """

    model: str
    out: str | os.PathLike[str]
    layout: Layout = "flat"
    precision: Precision = "auto"
    n_check: int = N_CHECK


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote."""

    path: Path
    model: str
    family: str
    precision: str
    layout: str
    bytes: int
    check: ExportCheck
    metadata: Mapping[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ running files


class OnnxPredictor:
    """An exported file run by ONNX Runtime: ``predict_proba``/``predict`` on 0-255 pixels, nothing else imported.

    Parameters
    ----------
    source : path-like or bytes
        An exported ``.onnx`` file or its bytes.

    Attributes
    ----------
    classes_ : ndarray of int64
    metadata : dict of str to str
    layout : {"flat", "image"}
    """

    def __init__(self, source: str | os.PathLike[str] | bytes) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        try:
            self.session: InferenceSession = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise DigitlabError(f"not an ONNX model ONNX Runtime can run: {exc}") from None
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        try:
            self.classes_ = np.asarray(json.loads(self.metadata["classes"]), dtype=np.int64)
            layout = self.metadata["layout"]
        except (KeyError, ValueError):
            raise DigitlabError("not a digitlab export: its metadata has no classes or layout") from None
        if layout not in LAYOUTS:
            raise DigitlabError(f"unknown input layout {layout!r}")
        self.layout: Layout = "flat" if layout == "flat" else "image"

    def run(self, pixels: NDArray[Any]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """``probabilities`` (n, k) and ``label`` (n,) of uint8 ``pixels`` (n, 784) or (n, 28, 28)."""
        x = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8).reshape((-1, *_IMAGE_SHAPE[self.layout])))
        proba, label = self.session.run([PROBABILITIES, LABEL], {INPUT: x})
        return proba, label

    def predict_proba(self, X: NDArray[Any]) -> NDArray[np.float64]:
        """Probabilities of 0-255 pixels ``X`` (n, 784) or (n, 28, 28), shape (n, n_classes).

        Raises
        ------
        UserError
            Pixels that are not whole numbers 0-255 (the file takes uint8; 0-1 images must be multiplied by 255).
        """
        x = np.asarray(X)
        if x.dtype != np.uint8:
            if x.size and (x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.round(x))):
                raise UserError("an exported model takes pixel intensities 0-255 as whole numbers (uint8); "
                                f"got values from {float(x.min()):g} to {float(x.max()):g}")
            x = x.astype(np.uint8)
        return np.asarray(self.run(x)[0], dtype=np.float64)

    def predict(self, X: NDArray[Any]) -> NDArray[np.int64]:
        """The most probable class of each image, shape (n,)."""
        out: NDArray[np.int64] = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return out


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_predictor(folder: str | os.PathLike[str]) -> OnnxPredictor | None:
    """The model folder's own export (``model.onnx``), if it is of the folder's current weights; else None.

    ``digitlab export NAME --out FOLDER/model.onnx`` (into the model's own
    folder) writes one; the bundled model ships with one. A file whose
    ``weights_sha256`` is not that of ``weights.safetensors`` (the model was
    retrained since) is ignored, and so is the export of a model with a
    not-a-digit detector (``not_a_digit``), which the graph does not hold.
    """
    from digitlab.models.io import WEIGHTS_FILE

    path = Path(folder) / EXPORT_FILE
    weights = Path(folder) / WEIGHTS_FILE
    if not path.is_file() or not weights.is_file():
        return None
    try:
        predictor = OnnxPredictor(path)
    except DigitlabError:
        return None
    if predictor.metadata.get("weights_sha256") != _sha256_file(weights):
        return None
    if predictor.metadata.get("not_a_digit", "none") != "none":  # the model's detector is not in the graph
        return None
    return predictor


# ------------------------------------------------------------------------------------------- graph pieces


def _helper() -> Any:
    from onnx import helper

    return helper


def _const(name: str, value: NDArray[Any]) -> TensorProto:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ascontiguousarray(value), name)


def _node(op: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any) -> NodeProto:
    node: NodeProto = _helper().make_node(op, list(inputs), list(outputs), **attrs)
    return node


@dataclass
class _Core:
    """A family's graph from features to ``output``: nodes, constants, and whether ``output`` is logits or proba."""

    nodes: list[NodeProto]
    constants: list[TensorProto]
    input: str
    output: str
    work: Literal["unit", "byte"]
    dtype: Literal["float32", "float64"]
    output_is_proba: bool = False
    image_input: bool = False         # the core takes (N, 1, 28, 28), standardised (the CNN)
    opsets: dict[str, int] = field(default_factory=lambda: {"": _OPSET})


def _graph_of(model: ModelProto, prefix: str) -> tuple[list[NodeProto], list[TensorProto], str, str, dict[str, int]]:
    """Nodes, constants, input and output names of a one-input model, every name prefixed (no clashes)."""
    from onnx import compose

    model = compose.add_prefix(model, prefix)
    g = model.graph
    if len(g.input) != 1:
        raise ExportCheckError(f"a converted graph has {len(g.input)} inputs, expected 1")
    opsets = {o.domain: o.version for o in model.opset_import}
    return list(g.node), list(g.initializer), g.input[0].name, g.output[-1].name, opsets


def _linear_core(est: DigitClassifier) -> _Core:
    """logreg, svm-linear: skl2onnx's LinearClassifier with raw scores; ovr logreg's logits are log-sigmoids."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    coef = np.asarray(est.coef_, dtype=np.float64)
    k = coef.shape[0]
    sk = LogisticRegression()
    sk.classes_ = np.arange(k)
    sk.coef_, sk.intercept_ = coef, np.asarray(est.intercept_, dtype=np.float64)
    sk.n_features_in_ = coef.shape[1]
    onx = to_onnx(sk, initial_types=[("x", FloatTensorType([None, coef.shape[1]]))], target_opset={"": _OPSET,
                  "ai.onnx.ml": 1}, options={"zipmap": False, "raw_scores": True})
    nodes, consts, x, _, opsets = _graph_of(onx, "linear_")
    scores = next(o.name for o in onx.graph.output if o.name.endswith("probabilities"))
    scores = "linear_" + scores if not scores.startswith("linear_") else scores
    if k == 2 and len(coef) == 2:  # skl2onnx reads a 2-row coef_ as binary; give it as two scores instead
        raise CannotExportError("two-class linear models are exported by their scores; retrain on 3+ classes")
    out = scores
    if getattr(est, "multi_class", "multinomial") == "ovr":       # logits = log sigmoid(s) = -softplus(-s)
        nodes += [_node("Neg", [scores], ["ovr_neg"]), _node("Softplus", ["ovr_neg"], ["ovr_sp"]),
                  _node("Neg", ["ovr_sp"], ["ovr_logits"])]
        out = "ovr_logits"
    return _Core(nodes, consts, x, out, "unit", "float32", opsets=opsets)


def _sgd_core(est: DigitClassifier) -> _Core:
    """sgd: the log-odds ``d`` as logits ``[0, d]`` (helper: one MatMul)."""
    coef = np.asarray(est.coef_, dtype=np.float32).reshape(-1, 1)
    b = np.asarray([float(est.intercept_)], dtype=np.float32)
    nodes = [_node("MatMul", ["x", "sgd_w"], ["sgd_d0"]), _node("Add", ["sgd_d0", "sgd_b"], ["sgd_d"]),
             _node("Sub", ["sgd_d", "sgd_d"], ["sgd_zero"]),
             _node("Concat", ["sgd_zero", "sgd_d"], ["sgd_logits"], axis=1)]
    return _Core(nodes, [_const("sgd_w", coef), _const("sgd_b", b)], "x", "sgd_logits", "unit", "float32")


def _centroid_core(est: DigitClassifier) -> _Core:
    """centroid: ``-|x - c|^2 / temperature`` in float64 (squared distances are in the millions)."""
    c = np.asarray(est.centroids_, dtype=np.float64)
    nodes = [_node("Mul", ["x", "x"], ["cen_xx"]), _node("ReduceSum", ["cen_xx", "cen_axis1"], ["cen_x2"], keepdims=1),
             _node("MatMul", ["x", "cen_ct"], ["cen_xc"]), _node("Mul", ["cen_xc", "cen_m2"], ["cen_m2xc"]),
             _node("Add", ["cen_x2", "cen_m2xc"], ["cen_d0"]), _node("Add", ["cen_d0", "cen_c2"], ["cen_d"]),
             _node("Relu", ["cen_d"], ["cen_d+"]), _node("Mul", ["cen_d+", "cen_scale"], ["cen_logits"])]
    consts = [_const("cen_axis1", np.array([1], np.int64)), _const("cen_ct", c.T.copy()),
              _const("cen_m2", np.array(-2.0)), _const("cen_c2", (c * c).sum(1)[None, :]),
              _const("cen_scale", np.array(-1.0 / float(est.temperature)))]
    return _Core(nodes, consts, "x", "cen_logits", "byte", "float64")


def _kernel_svm_core(est: DigitClassifier) -> _Core:
    """Kernel SVMs: skl2onnx's PCA, then kernel, one-vs-one decisions and votes in float64 (helper)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType
    from sklearn.decomposition import PCA

    comps = np.asarray(est.pca_components_, dtype=np.float64)
    pca = PCA(n_components=comps.shape[0])
    pca.components_, pca.mean_ = comps, np.asarray(est.pca_mean_, dtype=np.float64)
    pca.n_components_, pca.n_features_in_, pca.whiten = comps.shape[0], comps.shape[1], False
    pca.explained_variance_ = np.ones(comps.shape[0])
    onx = to_onnx(pca, initial_types=[("x", DoubleTensorType([None, comps.shape[1]]))], target_opset=_OPSET)
    nodes, consts, x, z, opsets = _graph_of(onx, "pca_")
    sv = np.asarray(est.support_vectors_, dtype=np.float64)
    k = len(est.classes_)
    p = est._kernel_params()
    gamma, degree, coef0 = float(p["gamma"]), int(p["degree"]), float(p["coef0"])
    consts.append(_const("svm_svt", sv.T.copy()))
    if est.kernel == "rbf":
        nodes += [_node("Mul", [z, z], ["svm_zz"]), _node("ReduceSum", ["svm_zz", "svm_axis1"], ["svm_z2"], keepdims=1),
                  _node("MatMul", [z, "svm_svt"], ["svm_zs"]), _node("Mul", ["svm_zs", "svm_m2"], ["svm_m2zs"]),
                  _node("Add", ["svm_z2", "svm_m2zs"], ["svm_d0"]), _node("Add", ["svm_d0", "svm_s2"], ["svm_d1"]),
                  _node("Relu", ["svm_d1"], ["svm_d"]), _node("Mul", ["svm_d", "svm_mgamma"], ["svm_e"]),
                  _node("Exp", ["svm_e"], ["svm_K"])]
        consts += [_const("svm_axis1", np.array([1], np.int64)), _const("svm_m2", np.array(-2.0)),
                   _const("svm_s2", (sv * sv).sum(1)[None, :]), _const("svm_mgamma", np.array(-gamma))]
    else:
        nodes += [_node("MatMul", [z, "svm_svt"], ["svm_zs"]), _node("Mul", ["svm_zs", "svm_gamma"], ["svm_gz"]),
                  _node("Add", ["svm_gz", "svm_coef0"], ["svm_dot"])]
        consts += [_const("svm_gamma", np.array(gamma)), _const("svm_coef0", np.array(coef0))]
        if est.kernel == "sigmoid":
            nodes.append(_node("Tanh", ["svm_dot"], ["svm_K"]))
        elif est.kernel == "poly":
            last = "svm_dot"
            if degree == 0:
                nodes += [_node("Sub", ["svm_dot", "svm_dot"], ["svm_zero"]), _node("Add", ["svm_zero", "svm_one"],
                                                                                   ["svm_K"])]
                consts.append(_const("svm_one", np.array(1.0)))
            else:
                for i in range(degree - 1):  # repeated products, as the estimator computes them
                    nxt = "svm_K" if i == degree - 2 else f"svm_pow{i}"
                    nodes.append(_node("Mul", [last, "svm_dot"], [nxt]))
                    last = nxt
                if degree == 1:
                    nodes.append(_node("Identity", ["svm_dot"], ["svm_K"]))
        else:
            raise CannotExportError(f"unknown kernel {est.kernel!r}")
    # one-vs-one decisions D = K @ M + b, positive for the pair's first class (libsvm's order (0,1), (0,2), ...)
    starts = np.concatenate([[0], np.cumsum(est.n_support_)])
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    M = np.zeros((len(sv), len(pairs)))
    first = np.zeros((len(pairs), k))
    second = np.zeros((len(pairs), k))
    for q, (i, j) in enumerate(pairs):
        si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
        M[si, q] = est.dual_coef_[j - 1, si]
        M[sj, q] = est.dual_coef_[i, sj]
        first[q, i] = second[q, j] = 1.0
    consts += [_const("svm_M", M), _const("svm_b", np.asarray(est.intercept_, np.float64)[None, :]),
               _const("svm_vote_first", first), _const("svm_vote_second", second),
               _const("svm_diff", first - second), _const("svm_zero_d", np.array(0.0)),
               _const("svm_three", np.array(3.0)), _const("svm_one_d", np.array(1.0))]
    nodes += [_node("MatMul", ["svm_K", "svm_M"], ["svm_D0"]), _node("Add", ["svm_D0", "svm_b"], ["svm_D"]),
              _node("Greater", ["svm_D", "svm_zero_d"], ["svm_pos"]), _node("Cast", ["svm_pos"], ["svm_posf"], to=11),
              _node("Sub", ["svm_one_d", "svm_posf"], ["svm_negf"]),
              _node("MatMul", ["svm_posf", "svm_vote_first"], ["svm_v1"]),
              _node("MatMul", ["svm_negf", "svm_vote_second"], ["svm_v2"]),
              _node("Add", ["svm_v1", "svm_v2"], ["svm_votes"]),
              _node("MatMul", ["svm_D", "svm_diff"], ["svm_conf"]), _node("Abs", ["svm_conf"], ["svm_aconf"]),
              _node("Add", ["svm_aconf", "svm_one_d"], ["svm_c1"]), _node("Mul", ["svm_c1", "svm_three"], ["svm_c3"]),
              _node("Div", ["svm_conf", "svm_c3"], ["svm_cfrac"]), _node("Add", ["svm_votes", "svm_cfrac"],
                                                                          ["svm_logits"])]
    return _Core(nodes, consts, x, "svm_logits", "unit", "float64", opsets=opsets)


def _trees_core(est: DigitClassifier) -> _Core:
    """trees: every LightGBM booster converted by onnxmltools with raw margins, averaged over the bags."""
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    k = len(est.classes_)
    if k == 2:
        raise CannotExportError("a two-class trees model cannot be exported yet (onnxmltools gives its margin "
                                "as one probability); train it on 3 or more digits")
    nodes: list[NodeProto] = []
    consts: list[TensorProto] = []
    margins = []
    opsets: dict[str, int] = {}
    for b, booster in enumerate(est.boosters_):
        onx = onnxmltools.convert_lightgbm(booster, initial_types=[("x", FloatTensorType([None, est.n_features_in_]))],
                                           target_opset=15, zipmap=False)  # onnxmltools' highest
        for node in onx.graph.node:
            if node.op_type == "TreeEnsembleClassifier":
                for attr in node.attribute:
                    if attr.name == "post_transform":
                        attr.s = b"NONE"    # raw margins: the average over bags is the model's score
        n, c, x, _, ops = _graph_of(onx, f"bag{b}_")
        if b == 0:
            shared_x = x
        else:  # every bag reads the first bag's input
            for node in n:
                node.input[:] = [shared_x if i == x else i for i in node.input]
        out = next(o.name for o in onx.graph.output if "prob" in o.name)
        nodes += n
        consts += c
        margins.append(f"bag{b}_{out}" if not out.startswith(f"bag{b}_") else out)
        opsets.update(ops)
    nodes.append(_node("Sum", margins, ["trees_sum"]))
    nodes.append(_node("Div", ["trees_sum", "trees_nbags"], ["trees_logits"]))
    consts.append(_const("trees_nbags", np.array(float(len(margins)), np.float32)))
    return _Core(nodes, consts, shared_x, "trees_logits", "byte", "float32", opsets=opsets)


def _dpmm_core(est: DigitClassifier) -> _Core:
    """dpmm: pixels >= threshold, each chain's cluster log-weights, memberships and votes, averaged; log (helper)."""
    if len(est.classes_) == 0:
        raise CannotExportError("this mixture was fitted without labels, so it does not classify")
    nodes = [_node("GreaterOrEqual", ["x", "dp_threshold"], ["dp_on"]), _node("Cast", ["dp_on"], ["dp_xb"], to=11)]
    consts = [_const("dp_threshold", np.array(float(est.threshold)))]
    mixes = []
    for c, st in enumerate(est.chains_):
        lp1, lp0 = st.log_probs()
        consts += [_const(f"dp_w{c}", (lp1 - lp0).T.copy()),
                   _const(f"dp_b{c}", (lp0.sum(axis=1) + st.log_prior())[None, :]),
                   _const(f"dp_votes{c}", est._votes(c))]
        nodes += [_node("MatMul", ["dp_xb", f"dp_w{c}"], [f"dp_lw0_{c}"]),
                  _node("Add", [f"dp_lw0_{c}", f"dp_b{c}"], [f"dp_lw_{c}"]),
                  _node("Softmax", [f"dp_lw_{c}"], [f"dp_m_{c}"], axis=1),
                  _node("MatMul", [f"dp_m_{c}", f"dp_votes{c}"], [f"dp_p_{c}"])]
        mixes.append(f"dp_p_{c}")
    nodes += [_node("Sum", mixes, ["dp_sum"]), _node("ReduceSum", ["dp_sum", "dp_axis1"], ["dp_total"], keepdims=1),
              _node("Div", ["dp_sum", "dp_total"], ["dp_proba"]), _node("Max", ["dp_proba", "dp_floor"], ["dp_p+"]),
              _node("Log", ["dp_p+"], ["dp_logits"])]   # the tail's temperature and softmax calibrate them
    consts += [_const("dp_axis1", np.array([1], np.int64)), _const("dp_floor", np.array(1e-300))]
    return _Core(nodes, consts, "x", "dp_logits", "byte", "float64")


def _cnn_core(est: DigitClassifier, precision: Literal["float", "int8"]) -> _Core:
    """cnn: the int8 graph as it is, or the float network exported by ``torch.onnx``; input (N, 1, 28, 28)."""
    import onnx

    if precision == "int8":
        graph = getattr(est, "int8_graph_", None)
        if graph is None:
            raise CannotExportError("this CNN has no int8 graph: export it with --precision float, or add one "
                                    "with 'digitlab models requantize'")
        model = onnx.load_from_string(graph)
    else:
        from digitlab.errors import require_torch

        torch = require_torch("exporting the CNN's float network (--precision float)")
        from digitlab.models.cnn._int8 import _quiet

        with _quiet():
            program = torch.onnx.export(est._inference_net(), (torch.zeros(1, 1, 28, 28),), dynamo=True,
                                        verbose=False, input_names=["x"], output_names=["logits"],
                                        dynamic_shapes={"x": {0: torch.export.Dim("n")}})
        if program is None:
            raise ExportCheckError("torch.onnx.export returned no program")
        model = program.model_proto
    nodes, consts, x, out, opsets = _graph_of(model, "cnn_")
    return _Core(nodes, consts, x, out, "byte", "float32", image_input=True, opsets=opsets)


# ------------------------------------------------------------------------------------------------ assembly


def _core(est: DigitClassifier, name: str, precision: Literal["float", "int8"]) -> _Core:
    if name in ("logreg", "svm-linear"):
        return _linear_core(est)
    if name == "sgd":
        return _sgd_core(est)
    if name == "centroid":
        return _centroid_core(est)
    if name in ("svm-rbf", "svm-poly", "svm-sigmoid"):
        return _kernel_svm_core(est)
    if name == "trees":
        return _trees_core(est)
    if name == "dpmm":
        return _dpmm_core(est)
    if name == "cnn":
        return _cnn_core(est, precision)
    raise CannotExportError(f"model {name!r} cannot be exported to ONNX")


def _assemble(core: _Core, classes: NDArray[Any], temperature: float, layout: Layout,
              n_features: int) -> ModelProto:
    """``pixels`` uint8 -> the core's features -> probabilities (calibrated) and label."""
    from onnx import TensorProto as TP
    from onnx.helper import make_graph, make_model, make_opsetid, make_tensor_value_info

    from digitlab.models.cnn.inputs import MNIST_MEAN, MNIST_STD

    dtype = TP.DOUBLE if core.dtype == "float64" else TP.FLOAT
    np_dtype = np.float64 if core.dtype == "float64" else np.float32
    head: list[NodeProto] = []
    consts: list[TensorProto] = []
    shape = [-1, 1, 28, 28] if core.image_input else [-1, n_features]
    head.append(_node("Reshape", [INPUT, "in_shape"], ["in_shaped"]))
    consts.append(_const("in_shape", np.array(shape, np.int64)))
    head.append(_node("Cast", ["in_shaped"], ["in_float"], to=dtype))
    if core.image_input:  # the CNN's standardisation, as models.cnn.inputs.standardised computes it (float32)
        head += [_node("Mul", ["in_float", "in_scale"], ["in_unit"]), _node("Sub", ["in_unit", "in_mean"], ["in_c"]),
                 _node("Div", ["in_c", "in_std"], [core.input])]
        consts += [_const("in_scale", np.array(1 / 255, np.float32)),
                   _const("in_mean", np.array(MNIST_MEAN, np.float32)),
                   _const("in_std", np.array(MNIST_STD, np.float32))]
    elif core.work == "unit":
        head.append(_node("Div", ["in_float", "in_255"], [core.input]))   # x / 255, as the estimators divide
        consts.append(_const("in_255", np.array(255.0, np_dtype)))
    else:
        head.append(_node("Identity", ["in_float"], [core.input]))
    tail: list[NodeProto] = []
    if core.output_is_proba:
        tail.append(_node("Identity", [core.output], ["out_p"]))
    else:
        tail += [_node("Div", [core.output, "out_t"], ["out_z"]), _node("Softmax", ["out_z"], ["out_p"], axis=1)]
        consts.append(_const("out_t", np.array(temperature, np_dtype)))
    tail += [_node("Cast", ["out_p"], [PROBABILITIES], to=TP.FLOAT),
             _node("ArgMax", ["out_p"], ["out_k"], axis=1, keepdims=0),
             _node("Gather", ["out_classes", "out_k"], [LABEL], axis=0)]
    consts.append(_const("out_classes", np.asarray(classes).astype(np.int64)))
    k = len(classes)
    inputs = [make_tensor_value_info(INPUT, TP.UINT8, LAYOUTS[layout])]
    outputs = [make_tensor_value_info(PROBABILITIES, TP.FLOAT, ["N", k]),
               make_tensor_value_info(LABEL, TP.INT64, ["N"])]
    graph = make_graph(head + core.nodes + tail, "digitlab", inputs, outputs, initializer=consts + core.constants)
    opsets = dict(core.opsets)
    opsets[""] = max(opsets.get("", _OPSET), 13)
    model: ModelProto = make_model(graph, opset_imports=[make_opsetid(d, v) for d, v in sorted(opsets.items())],
                                   producer_name="digitlab")
    model.ir_version = max(_IR, 10 if opsets[""] >= 20 else _IR)
    return model


def _check(onx: bytes, est: DigitClassifier, images: NDArray[np.uint8], labels: NDArray[Any] | None,
           tolerance: float) -> ExportCheck:
    """Compare the file's probabilities and labels with ``est``'s on ``images``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(onx, opts, providers=["CPUExecutionProvider"])
    flat = images.reshape(len(images), -1)
    x = flat.reshape([-1, *session.get_inputs()[0].shape[1:]])
    proba, label = session.run([PROBABILITIES, LABEL], {INPUT: np.ascontiguousarray(x)})
    factor = 1 / 255 if est.input_scale_ == "0-1" else 1.0
    expected = np.asarray(est.predict_proba(flat.astype(np.float64) * factor), dtype=np.float64)
    expected_label = np.asarray(est.classes_)[np.argmax(expected, axis=1)]
    accuracy = None
    if labels is not None:
        truth = np.asarray(est.binary_target(labels)) if hasattr(est, "binary_target") else np.asarray(labels)
        known = np.isin(truth, est.classes_)
        accuracy = float((label[known] == truth[known]).mean()) if known.any() else None
    return ExportCheck(n=len(images), labels_equal=int((label == expected_label).sum()),
                       max_abs_diff=float(np.abs(proba.astype(np.float64) - expected).max()), tolerance=tolerance,
                       accuracy=accuracy)


def onnx_graph(est: DigitClassifier, *, layout: Layout = "flat", precision: Precision = "auto",
               ) -> tuple[ModelProto, str, DigitClassifier]:
    """The estimator's graph, unchecked and without metadata (:func:`export_onnx` checks it).

    Returns
    -------
    ModelProto, {"float32", "float64", "int8"}, DigitClassifier
        The graph; its precision; the estimator it must agree with (for the CNN,
        a copy set to predict with that precision).
    """
    from digitlab.models import model_name_of

    model = model_name_of(est)
    used: Literal["float", "int8"] = "float"
    if model == "cnn":
        has_int8 = bool(getattr(est, "int8", False)) and getattr(est, "int8_graph_", None) is not None
        used = "int8" if precision == "int8" or (precision == "auto" and has_int8) else "float"
    reference = est
    if model == "cnn":
        import copy

        reference = copy.copy(est).set_params(int8=used == "int8", bf16=False)
    core = _core(reference, model, used)
    onx = _assemble(core, np.asarray(est.classes_), float(est.temperature_), layout, int(est.n_features_in_))
    return onx, "int8" if used == "int8" else core.dtype, reference


def export_onnx(est: DigitClassifier, images: NDArray[np.uint8], labels: NDArray[Any] | None = None, *,
                card: ModelCard | None = None, name: str | None = None, layout: Layout = "flat",
                precision: Precision = "auto", weights_sha256: str | None = None) -> tuple[bytes, ExportCheck]:
    """A fitted estimator as a checked ONNX file (see the module docstring).

    Parameters
    ----------
    est : fitted DigitClassifier
    images : ndarray of uint8, shape (n, 28, 28) or (n, 784)
        What the check predicts with both (1,000 MNIST test digits in :func:`export_model`).
    labels : ndarray, shape (n,), optional
        Their labels, for the accuracy recorded with the check.
    card : ModelCard, optional
        Its card: test accuracy and training checksum go into the metadata.
    name : str, optional
        The model's name, for the metadata.
    layout : {"flat", "image"}
    precision : {"auto", "float", "int8"}
        For the CNN; ``auto`` is int8 when the model predicts with an int8 graph.
    weights_sha256 : str, optional
        Of the model folder's weights, so :func:`load_predictor` knows the file is current.

    Returns
    -------
    bytes, ExportCheck
        The serialised model and how it agreed with ``est``.

    Raises
    ------
    CannotExportError
        The model cannot be exported (non-pixel inputs, an unlabelled mixture, a bad layout or precision, ...).
    ExportCheckError
        The graph disagrees with the estimator.
    MissingExtraError
        ``precision="float"`` for a CNN without torch.
    """
    from datetime import UTC, datetime

    from digitlab import __version__
    from digitlab.models import model_name_of

    model = model_name_of(est)
    if layout not in LAYOUTS:
        raise CannotExportError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if precision not in ("auto", "float", "int8"):
        raise CannotExportError(f"precision must be auto, float or int8, got {precision!r}")
    if model != "cnn" and precision == "int8":
        raise CannotExportError(f"only the CNN has an int8 graph; {model!r} is exported in float")
    if est.input_scale_ == "features":
        raise CannotExportError(f"this {model} was fitted on features that are not pixels (values below 0 or "
                                "above 255), so it cannot take pixels; export a model fitted on 0-255 or 0-1 images")
    if est.n_features_in_ != 784:
        raise CannotExportError(f"an exported model takes 28x28 images; this one was fitted on "
                                f"{est.n_features_in_} features")
    onx, used, reference = onnx_graph(est, layout=layout, precision=precision)
    data = onx.SerializeToString()
    tolerance = TOLERANCE["int8" if used == "int8" else "float"]
    images = np.asarray(images, dtype=np.uint8)
    check = _check(data, reference, images, labels, tolerance)
    if not check.passed:
        raise ExportCheckError(f"the exported {model} disagrees with the model on {check.n} test digits: "
                               f"{check.n - check.labels_equal} labels differ, probabilities differ by up to "
                               f"{check.max_abs_diff:.3g} (allowed {tolerance:g}); nothing was written")
    train = card.train if card is not None else None
    meta = {
        "digitlab_version": __version__, "model": model, "family": est.family, "name": name or model,
        "params": json.dumps(est.get_params(), default=str), "classes": json.dumps(np.asarray(est.classes_).tolist()),
        "input": f"{INPUT}: uint8 {LAYOUTS[layout]} pixel intensities 0-255 (0 background, 255 ink), row-major",
        "layout": layout, "preprocessing": PREPROCESSING,
        "test_accuracy": "" if card is None or card.test_accuracy is None else f"{card.test_accuracy:.6f}",
        "train_sha256": (train.sha256 or "") if train is not None else "",
        "temperature": f"{float(est.temperature_):.6g}",
        "calibration": json.dumps(dict(train.calibration) if train is not None else {}, default=str),
        "precision": used, "export_check": json.dumps(check.as_dict()),
        "weights_sha256": weights_sha256 or "", "created": datetime.now(UTC).isoformat(timespec="seconds"),
        # a model that tells pictures that are not digits (issue 14) does more than the graph: say so
        "not_a_digit": "model" if callable(getattr(est, "not_a_digit", None)) else "none",
    }
    from onnx.helper import set_model_props

    set_model_props(onx, meta)
    onx.doc_string = (f"digitlab {model} ({est.family}): {INPUT} uint8 {LAYOUTS[layout]} -> {PROBABILITIES} "
                      f"float32 [N, {len(est.classes_)}], {LABEL} int64 [N]. {PREPROCESSING}")
    onx.producer_version = __version__
    return onx.SerializeToString(), check


def export_model(spec: ExportSpec, *, settings: Settings | None = None) -> ExportResult:
    """Export a saved model to ONNX, check it on MNIST test digits and write it atomically.

    Raises
    ------
    NotFoundError
        No such model (or MNIST is missing: DataNotFoundError).
    CannotExportError
        The model cannot be exported, or ``out`` is not a ``.onnx`` file.
    ExportCheckError
        The graph disagrees with the model; nothing is written.
    MissingExtraError
        The float CNN without torch.
    """
    from digitlab._io import atomic_write_bytes
    from digitlab.data import load_mnist
    from digitlab.models.io import WEIGHTS_FILE, load_model
    from digitlab.settings import get_settings
    from digitlab.workflows import resolve_model

    settings = settings or get_settings()
    out = Path(spec.out)
    if out.suffix.lower() != ".onnx":
        raise CannotExportError(f"--out must be a .onnx file, got {str(out)!r}")
    if spec.n_check < 1:
        raise CannotExportError(f"the check needs at least 1 test digit, got {spec.n_check}")
    folder, name = resolve_model(spec.model, settings)
    loaded = load_model(folder, name=name)
    x, y = load_mnist(settings.data_dir, "test")
    x, y = x[:spec.n_check], y[:spec.n_check]
    weights = folder / WEIGHTS_FILE
    data, check = export_onnx(loaded.estimator, x, y, card=loaded.card, name=name, layout=spec.layout,
                              precision=spec.precision, weights_sha256=_sha256_file(weights))
    atomic_write_bytes(out, data)
    meta = OnnxPredictor(data).metadata
    return ExportResult(path=out, model=loaded.card.model, family=loaded.estimator.family,
                        precision=meta["precision"], layout=spec.layout, bytes=len(data), check=check, metadata=meta)
