"""A folder of image files with one sub-folder per label (``0/`` ... ``9/``).

Any size and mode that Pillow decodes (PNG, BMP, JPEG, GIF, ...) is read and
turned into a 28x28 uint8 grey MNIST-style image by :mod:`digitlab.preprocess`
(28x28 images that already look like MNIST pass through unchanged).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from digitlab._io import atomic_path
from digitlab.data._validate import check_pair
from digitlab.errors import DataError, UserError

__all__ = ["IMAGE_SUFFIXES", "read_image_folder", "write_image_folder"]

IMAGE_SUFFIXES = frozenset({".png", ".bmp", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})


def read_image_folder(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read ``path/<label>/<image>`` files.

    Returns
    -------
    images : ndarray of uint8, shape (n, 28, 28)
    labels : ndarray of int64, shape (n,)
        Sorted by label, then file name.
    """
    from digitlab.preprocess import load_image  # preprocess imports data; import late

    root = Path(path)
    if not root.is_dir():
        raise DataError(root, "not a folder")
    label_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    bad = [d.name for d in label_dirs if d.name not in {str(i) for i in range(10)}]
    if bad:
        raise DataError(root, f"sub-folders must be named 0-9 (one per label), found {bad[0]!r}")
    images: list[np.ndarray] = []
    labels: list[int] = []
    for d in label_dirs:
        for f in sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                images.append(load_image(f))
            except UserError as exc:
                raise DataError(f, str(exc).removeprefix(f"{f}: "), record=len(images)) from None
            except (ValueError, OSError, TypeError, SyntaxError) as exc:  # a mode or file Pillow cannot convert
                raise DataError(f, f"cannot read this image ({type(exc).__name__}: {exc})",
                                record=len(images)) from None
            labels.append(int(d.name))
    if not images:
        raise DataError(root, "no image files found in sub-folders 0-9")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def write_image_folder(path: str | os.PathLike[str], images: np.ndarray, labels: np.ndarray) -> None:
    """Write each image as ``path/<label>/<index:05d>.png`` (each file written atomically)."""
    from PIL import Image

    images = np.asarray(images, dtype=np.uint8)
    check_pair(images, np.asarray(labels))
    root = Path(path)
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        with atomic_path(root / str(int(lab)) / f"{i:05d}.png") as tmp:
            Image.fromarray(img, mode="L").save(tmp, format="PNG")
