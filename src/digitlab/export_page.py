"""MLPaint as a static site: the page, ONNX Runtime Web and a model, running with no server at all.

The MLPaint page can predict in the visitor's browser: ``serve/static/js/normalise.js``
turns the strokes into the 28x28 MNIST-style image exactly as
:func:`digitlab.preprocess.render_strokes` does, and ONNX Runtime Web (vendored in
``serve/static/vendor/onnxruntime-web/``, nothing comes from a CDN) runs the model.
:func:`export_page` writes that page as a folder any static host can serve:

====================================  ==================================================
``index.html``                        the page, its paths relative, told it has no server
``static/style.css``, ``static/js/``  the page's modules, as served by ``digitlab serve``
``static/vendor/onnxruntime-web/``    ONNX Runtime Web's wasm build (MIT)
``model.onnx``                        the model (:func:`browser_model_bytes`)
``digitlab-page.json``                what was exported: model, digitlab version, files and their sha256
====================================  ==================================================

The browser's model takes what digitlab's ONNX exports take: ``pixels``, raw
uint8 intensities of shape ``[N, 784]``, with the standardisation inside the
graph, and gives ``probabilities`` (float32 ``[N, 10]``) and ``label`` (int64
``[N]``). :func:`browser_model_bytes` is the one place that makes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from digitlab._io import atomic_dir
from digitlab.errors import UserError

if TYPE_CHECKING:
    from digitlab.models.base import DigitClassifier
    from digitlab.settings import Settings

__all__ = [
    "INPUT",
    "LABEL",
    "MANIFEST",
    "MODEL_FILE",
    "PROBABILITIES",
    "NoBrowserModelError",
    "PageExport",
    "browser_model_bytes",
    "export_page",
    "static_dir",
]

#: The browser model's input and outputs (those of digitlab's ONNX exports).
INPUT, PROBABILITIES, LABEL = "pixels", "probabilities", "label"
#: The model's file in an exported site, and the site's manifest.
MODEL_FILE, MANIFEST = "model.onnx", "digitlab-page.json"
#: What the model's input must be (also in the file's metadata).
PREPROCESSING = ("MNIST-style 28x28 uint8, row-major: white ink (255) on black (0), the digit's bounding box "
                 "scaled into 20x20 and centred by its centre of mass; digitlab.preprocess.render_strokes "
                 "(Python) and serve/static/js/normalise.js (the page) make it from canvas strokes.")
# Page files an export leaves out: none of them run in a browser.
_SKIP = re.compile(r"(^|/)(\.|__pycache__)|\.(map|py|pyc)$")


class NoBrowserModelError(UserError):
    """The model cannot run in the browser (the message says why): exit 2 in the CLI, 422 over HTTP."""


def static_dir() -> Path:
    """The MLPaint page's files shipped in the package (``digitlab/serve/static``)."""
    return Path(str(resources.files("digitlab") / "serve" / "static"))


def browser_model_bytes(estimator: DigitClassifier) -> bytes:
    """The ONNX model the page runs in the browser: uint8 pixels in, probabilities and label out.

    It is :func:`digitlab.export.onnx_graph` of the model, the same graph
    ``digitlab export`` writes (calibrated probabilities, the standardisation
    inside), with its metadata; made without torch. Today only the CNN's int8
    graph runs in the browser: the other families' graphs use ONNX's ``ai.onnx.ml``
    operators or float64 kernels, which ONNX Runtime Web's wasm build does not
    run, or are too large to send to a page.

    Parameters
    ----------
    estimator : DigitClassifier
        A fitted CNN with an int8 graph (``int8_graph_``).

    Returns
    -------
    bytes
        A serialised ONNX model: ``pixels`` uint8 ``[N, 784]`` -> ``probabilities``
        float32 ``[N, n_classes]``, ``label`` int64 ``[N]``.

    Raises
    ------
    NoBrowserModelError
        The estimator has no int8 graph (not a CNN, or one saved without it).
    """
    if getattr(estimator, "int8_graph_", None) is None:
        raise NoBrowserModelError(
            f"a {type(estimator).__name__} cannot run in the browser yet: only a CNN with an int8 graph can "
            "(`digitlab models requantize NAME` adds one)")
    from onnx.helper import set_model_props

    from digitlab import __version__
    from digitlab.export import onnx_graph

    model, _, _ = onnx_graph(estimator, layout="flat", precision="int8")
    classes = np.asarray(estimator.classes_).astype(np.int64)
    model.doc_string = (f"digitlab {type(estimator).__name__}: {INPUT} uint8 [N, 784] -> {PROBABILITIES} float32 "
                        f"[N, {len(classes)}], {LABEL} int64 [N]")
    set_model_props(model, {
        "digitlab_version": __version__, "family": str(getattr(estimator, "family", "")),
        "classes": json.dumps(classes.tolist()), "input": f"{INPUT}: uint8 [N, 784] pixel intensities 0-255",
        "preprocessing": PREPROCESSING, "precision": "int8",
        "temperature": f"{float(getattr(estimator, 'temperature_', 1.0)):.6g}"})
    out: bytes = model.SerializeToString()
    return out


@dataclass(frozen=True)
class PageExport:
    """What :func:`export_page` wrote.

    Attributes
    ----------
    path : Path
        The site's folder.
    model : str
        The model exported.
    files : dict of str to int
        Every file written (path relative to ``path``, ``/``-separated) and its size in bytes.
    """

    path: Path
    model: str
    files: dict[str, int]

    @property
    def total_bytes(self) -> int:
        """Size of the whole site."""
        return sum(self.files.values())


def _check_target(out: Path) -> None:
    """Refuse to replace a folder that is not empty and not an earlier export (it may hold anything)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UserError(f"{out} is not empty and holds no earlier page export ({MANIFEST}): choose a new or "
                        "empty folder, so that nothing of yours is replaced")


def _page_html(template: str, site: dict[str, Any]) -> str:
    """The page's HTML for a static host: root paths made relative, and the site's description embedded."""
    page = re.sub(r'(href|src)="/static/', r'\1="static/', template)
    blob = json.dumps(site, ensure_ascii=False).replace("</", "<\\/")
    tag = f'<script type="application/json" id="digitlab-site">{blob}</script>\n'
    if "</head>" not in page:
        raise UserError("the page's index.html has no </head>")
    return page.replace("</head>", tag + "</head>", 1)


def export_page(out: str | os.PathLike[str], *, model: str = "default", settings: Settings | None = None) -> PageExport:
    """Write MLPaint as a static site that predicts in the browser with no server.

    Parameters
    ----------
    out : path-like
        The site's folder: new, empty, or an earlier export (replaced whole, atomically).
    model : str, default="default"
        A saved model's name ('default' is the bundled CNN).
    settings : Settings, optional
        Where models are found (default: the environment's).

    Returns
    -------
    PageExport

    Raises
    ------
    UserError
        ``out`` is a file, or a folder holding other things.
    NotFoundError
        No model of that name.
    NoBrowserModelError
        The model cannot run in the browser.
    """
    from digitlab import __version__
    from digitlab.models.io import load_model, model_path
    from digitlab.settings import get_settings

    target = Path(out)
    _check_target(target)
    settings = settings or get_settings()
    loaded = load_model(model_path(model, settings.models_dir), name=model)
    onx = browser_model_bytes(loaded.estimator)
    src = static_dir()
    accuracy = loaded.card.test_accuracy
    site = {"mode": "static", "model": {"name": model, "url": MODEL_FILE, "family": loaded.estimator.family,
                                        "test_accuracy": accuracy}}
    files: dict[str, bytes | Path] = {}
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if path.is_file() and not _SKIP.search(rel) and rel != "index.html":
            files[f"static/{rel}"] = path
    files["index.html"] = _page_html((src / "index.html").read_text(encoding="utf-8"), site).encode("utf-8")
    files[MODEL_FILE] = onx
    with atomic_dir(target) as tmp:
        sizes: dict[str, int] = {}
        digests: dict[str, str] = {}
        for rel, content in files.items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, dest)
            else:
                dest.write_bytes(content)
            sizes[rel] = dest.stat().st_size
            digests[rel] = hashlib.sha256(dest.read_bytes()).hexdigest()
        manifest = {"digitlab_version": __version__, "model": site["model"],
                    "files": {rel: {"bytes": sizes[rel], "sha256": digests[rel]} for rel in sorted(sizes)}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        sizes[MANIFEST] = (tmp / MANIFEST).stat().st_size
    return PageExport(path=target, model=model, files=dict(sorted(sizes.items())))
