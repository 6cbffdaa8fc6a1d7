"""``digitlab export NAME --format onnx --out model.onnx``: a saved model as one checked ONNX file."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from digitlab.cli._common import DataDirOption, HomeOption, OutputFormat, emit, settings_from

__all__ = ["export_command"]


class ExportFormat(str, enum.Enum):
    """File formats ``digitlab export`` writes."""

    onnx = "onnx"


class Layout(str, enum.Enum):
    """How the exported file takes its pixels."""

    flat = "flat"
    image = "image"


class Precision(str, enum.Enum):
    """The CNN's exported network."""

    auto = "auto"
    float = "float"
    int8 = "int8"


def export_command(
    name: str = typer.Argument(..., metavar="NAME_OR_FOLDER", help="A saved model's name ('default' = the bundled "
                                                                   "CNN), or a model folder."),
    out: Path = typer.Option(..., "--out", "-o", help="The .onnx file to write."),
    file_format: ExportFormat = typer.Option(ExportFormat.onnx, "--format", help="File format: onnx."),
    layout: Layout = typer.Option(Layout.flat, "--layout", help="Input 'pixels' as uint8 [N, 784] (flat) or "
                                                                "[N, 1, 28, 28] (image)."),
    precision: Precision = typer.Option(Precision.auto, "--precision", help="CNN only: its int8 graph (auto, when "
                                                                            "it has one) or the float network "
                                                                            "(needs torch)."),
    n_check: int = typer.Option(1000, "--check", help="MNIST test digits the file is checked on against the model."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--output", help="How to print the result: table or json."),
) -> None:
    """Export a model to ONNX: uint8 pixels in, calibrated 'probabilities' and 'label' out; checked before writing.

    Example: digitlab export default --out digit.onnx   (then see docs/deploy.md)
    """
    from digitlab.export import ExportSpec, export_model

    settings = settings_from(data_dir=data_dir, home=home)
    result = export_model(ExportSpec(model=name, out=out, layout=layout.value, precision=precision.value,
                                     n_check=n_check), settings=settings)
    check = result.check
    doc = {"path": result.path, "model": result.model, "family": result.family, "format": file_format.value,
           "precision": result.precision, "layout": result.layout, "bytes": result.bytes, "check": check.as_dict(),
           "metadata": dict(result.metadata)}
    emit(doc, fmt, title=f"{name} exported to {result.path}",
         columns=["", "value"],
         rows=[("model", f"{result.model} ({result.family})"), ("input", result.metadata.get("input", "")),
               ("outputs", "probabilities float32 [N, k], label int64 [N]"), ("precision", result.precision),
               ("size", f"{result.bytes / 1e6:.2f} MB"),
               ("check", f"{check.labels_equal}/{check.n} labels equal, probabilities within "
                         f"{check.max_abs_diff:.2g} (allowed {check.tolerance:g})"),
               ("accuracy on the check digits", check.accuracy)])
