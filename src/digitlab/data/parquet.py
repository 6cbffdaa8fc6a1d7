"""Digits in Parquet: the Hugging Face ``mnist`` layout, a ``pixels`` list column, or 784 pixel columns.

Three layouts are read, each with a label column (``label``, ``labels``,
``digit``, ``y``, ``class`` or ``target``):

* Hugging Face's ``mnist`` dataset (``mnist/train-00000-of-00001.parquet``):
  an ``image`` column of ``{bytes, path}`` structs holding PNG files (or plain
  binary); each picture is decoded and, unless it already is a 28x28 MNIST
  digit, normalised like any picture (:func:`digitlab.preprocess.to_mnist`);
* a ``pixels`` column of 784 numbers per row (what ``COPY mnist_train TO
  'x.parquet'`` writes from the store);
* 784 numeric pixel columns in row-major order beside the label column.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitlab._io import atomic_path
from digitlab.data._validate import N_PIXELS, check_labels, check_pair, check_pixels
from digitlab.errors import DataError, UserError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["LABEL_COLUMNS", "read_parquet", "write_parquet"]

#: Names taken for the label column, in this order.
LABEL_COLUMNS = ("label", "labels", "digit", "y", "class", "target")
_IMAGE_COLUMNS = ("image", "img", "png", "picture")


def read_parquet(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read digits from a Parquet file (the layouts of the module docstring).

    Returns
    -------
    images : ndarray of uint8, shape (n, 28, 28)
    labels : ndarray of int64, shape (n,)

    Raises
    ------
    DataError
        Not a Parquet file, no label column, no pixels or images, a bad value
        (the message names the record).
    """
    import pyarrow as pa  # here, not at import: reading any other format (or predicting) must not load pyarrow
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(path, f"not a readable Parquet file: {exc}") from None
    names = {n.lower(): n for n in table.column_names}
    label_col = next((names[n] for n in LABEL_COLUMNS if n in names), None)
    if label_col is None:
        raise DataError(path, f"no label column (one of {', '.join(LABEL_COLUMNS)}); columns: "
                              f"{', '.join(table.column_names[:10])}")
    labels = _labels(table.column(label_col), path)
    image_col = next((names[n] for n in _IMAGE_COLUMNS if n in names), None)
    if image_col is not None:
        images = _decode_images(table.column(image_col), path)
    elif "pixels" in names:
        images = _pixel_lists(table.column(names["pixels"]), path)
    else:
        pixel_cols = [c for c in table.column_names if c != label_col and c.lower() != "id"]
        if len(pixel_cols) != N_PIXELS:
            raise DataError(path, f"expected an image column ({', '.join(_IMAGE_COLUMNS)}), a 'pixels' list column "
                                  f"or {N_PIXELS} pixel columns beside {label_col!r}; found {len(pixel_cols)} "
                                  "other columns")
        values = np.column_stack([_numbers(table.column(c), path, c) for c in pixel_cols])
        images = check_pixels(values, path).reshape(-1, 28, 28)
    return images, labels


def _numbers(col: pa.ChunkedArray, path: Path, name: str) -> np.ndarray:
    import pyarrow as pa

    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise DataError(path, f"column {name!r} must hold numbers, it holds {col.type}")
    if col.null_count:
        row = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise DataError(path, f"column {name!r} is empty", record=row)
    return np.asarray(col.to_numpy(zero_copy_only=False))


def _labels(col: pa.ChunkedArray, path: Path) -> np.ndarray:

    values = _numbers(col, path, "label")
    if values.dtype.kind == "f" and not np.all(values == np.round(values)):
        row = int(np.flatnonzero(values != np.round(values))[0])
        raise DataError(path, f"label must be an integer 0-9, got {values[row]!r}", record=row)
    return check_labels(values, path)


def _pixel_lists(col: pa.ChunkedArray, path: Path) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks()
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type)):
        raise DataError(path, f"column 'pixels' must hold lists of {N_PIXELS} numbers, it holds {arr.type}")
    if arr.null_count:
        raise DataError(path, "column 'pixels' is empty", record=int(np.flatnonzero(np.asarray(arr.is_null()))[0]))
    lengths = np.asarray(pc.list_value_length(arr))
    if np.any(lengths != N_PIXELS):
        row = int(np.flatnonzero(lengths != N_PIXELS)[0])
        raise DataError(path, f"'pixels' must hold {N_PIXELS} values, got {lengths[row]}", record=row)
    flat = arr.flatten().to_numpy(zero_copy_only=False)
    return check_pixels(np.asarray(flat).reshape(-1, N_PIXELS), path).reshape(-1, 28, 28)


def _decode_images(col: pa.ChunkedArray, path: Path) -> np.ndarray:
    """Decode each row's picture bytes (a ``{bytes, path}`` struct, as Hugging Face stores images, or binary)."""
    import pyarrow as pa

    from digitlab.preprocess import decode_image, to_mnist

    arr = col.combine_chunks()
    if pa.types.is_struct(arr.type):
        if arr.type.get_field_index("bytes") < 0:
            raise DataError(path, f"the image column holds {arr.type}, without a 'bytes' field")
        arr = arr.field("bytes")
    if not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
        raise DataError(path, f"the image column must hold picture bytes, it holds {arr.type}")
    out = np.empty((len(arr), 28, 28), np.uint8)
    for i, data in enumerate(arr.to_pylist()):
        if data is None:
            raise DataError(path, "no picture bytes", record=i)
        try:
            img = decode_image(data)
            if img.size == (28, 28) and img.mode == "L":
                out[i] = np.asarray(img, dtype=np.uint8)
            else:
                out[i] = to_mnist(img)
        except UserError as exc:
            raise DataError(path, f"picture: {exc}", record=i) from None
        except (ValueError, OSError, TypeError, SyntaxError) as exc:
            raise DataError(path, f"cannot decode the picture ({type(exc).__name__}: {exc})", record=i) from None
    return out


def write_parquet(path: str | os.PathLike[str], images: np.ndarray, labels: np.ndarray, *,
                  layout: str = "huggingface") -> None:
    """Write digits as Parquet, atomically.

    Parameters
    ----------
    layout : {"huggingface", "pixels"}
        ``"huggingface"``: an ``image`` column of ``{bytes: PNG, path: null}``
        structs and ``label`` (the ``mnist`` dataset's layout); ``"pixels"``:
        ``label`` and a ``pixels`` list of 784 values.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    images = np.asarray(images, dtype=np.uint8)
    check_pair(images, np.asarray(labels))
    if layout == "huggingface":
        pngs = []
        for img in images:
            buf = io.BytesIO()
            Image.fromarray(img, mode="L").save(buf, format="PNG")
            pngs.append(buf.getvalue())
        image_col = pa.StructArray.from_arrays([pa.array(pngs, pa.binary()), pa.array([None] * len(pngs),
                                                                                     pa.string())],
                                               names=["bytes", "path"])
        table = pa.table({"image": image_col, "label": pa.array(np.asarray(labels, dtype=np.int64))})
    elif layout == "pixels":
        flat = images.reshape(len(images), N_PIXELS)
        table = pa.table({"label": pa.array(np.asarray(labels, dtype=np.int64)),
                          "pixels": pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), N_PIXELS)})
    else:
        raise ValueError(f"layout must be 'huggingface' or 'pixels', got {layout!r}")
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
