"""8-bit inference for the CNN: export to ONNX, quantize statically, run with ONNX Runtime.

For one image alone PyTorch's per-op dispatch dominates the time; an int8
graph run by ONNX Runtime is several times faster, alone or in batches, at
the same test accuracy (docs/cnn.md and BENCHMARKS.md have the figures).
Activations are quantized per tensor with ranges measured on calibration
images, so an image gets the same scores alone or in a batch.

The graph is plain ONNX (QDQ format), stored with the weights; it holds no code.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from digitlab.models.cnn._threads import inference_threads

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from torch import nn

__all__ = ["Int8Graph", "export_int8"]

_INPUT, _OUTPUT = "x", "logits"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and quantizer's advice (warnings and log lines): they are not the user's."""
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx"), logging.getLogger("onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_int8(net: nn.Module, calibration: NDArray[np.float32]) -> bytes:
    """Export ``net`` to ONNX and quantize it to int8 (QDQ, per-channel weights, min-max activation ranges).

    Parameters
    ----------
    net : torch.nn.Module
        Eval mode; maps (n, 1, 28, 28) float32 to (n, k) logits.
    calibration : ndarray of float32, shape (n, 1, 28, 28)
        Inputs as the network sees them (standardised), used to measure activation ranges.

    Returns
    -------
    bytes
        The serialised ONNX model: input ``x`` (n, 1, 28, 28) float32, output ``logits`` (n, k) float32.
    """
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{_INPUT: calibration[i:i + 128]} for i in range(0, len(calibration), 128)])

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            return next(self._it, None)

    import onnx

    # The TorchScript exporter: the same graph as the dynamo exporter for this small network, in a fraction
    # of the time (the dynamo exporter's first call in a process costs seconds: docs/cnn.md).
    with _quiet(), tempfile.TemporaryDirectory() as tmp:
        float_file, out = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        torch.onnx.export(net, (torch.zeros(1, 1, 28, 28),), str(float_file), dynamo=False, verbose=False,
                          input_names=[_INPUT], output_names=[_OUTPUT], opset_version=17,
                          dynamic_axes={_INPUT: {0: "n"}, _OUTPUT: {0: "n"}})
        quantize_static(onnx.load(str(float_file)), str(out), Batches(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        return out.read_bytes()


class Int8Graph:
    """Runs a quantized graph with ONNX Runtime: one session per thread count, made on first use.

    Parameters
    ----------
    graph : bytes
        A model made by :func:`export_int8`.

    Raises
    ------
    ValueError
        ``graph`` is not an ONNX model ONNX Runtime can run (checked at once, with a one-thread session).
    """

    def __init__(self, graph: bytes) -> None:
        self.graph = graph
        self._sessions: dict[int, InferenceSession] = {}
        try:
            self._session(1)
        except Exception as exc:
            raise ValueError(f"the int8 graph cannot be loaded by ONNX Runtime: {exc}") from None

    def _session(self, threads: int) -> InferenceSession:
        session = self._sessions.get(threads)
        if session is None:
            session = self._sessions[threads] = self._open(threads)
        return session

    def _open(self, threads: int) -> InferenceSession:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep, not spin
        return ort.InferenceSession(self.graph, opts, providers=["CPUExecutionProvider"])

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Logits of ``x`` (n, 1, 28, 28) float32, shape (n, k) float32, on :func:`inference_threads` threads."""
        session = self._session(inference_threads(len(x)))
        logits: NDArray[np.float32] = session.run([_OUTPUT], {_INPUT: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return logits
