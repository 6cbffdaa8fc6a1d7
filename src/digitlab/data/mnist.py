"""Locate, load and fetch the four canonical MNIST files.

The data folder is chosen by :func:`digitlab.settings.get_settings`:
``--data-dir``, else ``$DIGITLAB_DATA``, else the user's cache folder.
Each file may be stored raw or gzip-compressed; checksums are of the
decompressed bytes, as published with MNIST.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from digitlab._io import atomic_path
from digitlab.data.idx import read_idx_pair
from digitlab.errors import DataError, DataNotFoundError, DigitlabError

__all__ = ["MIRRORS", "MNIST_FILES", "MnistFile", "fetch_mnist", "find_mnist", "label_counts", "load_mnist",
           "missing_message", "mnist_folders"]


@dataclass(frozen=True)
class MnistFile:
    """One canonical MNIST file: the checksums and the size (in bytes) of its decompressed content."""

    name: str
    sha256: str
    md5: str
    size: int


MNIST_FILES: dict[str, MnistFile] = {f.name: f for f in (
    MnistFile("train-images-idx3-ubyte",
              "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", "6bbc9ace898e44ae57da46a324031adb",
              47040016),
    MnistFile("train-labels-idx1-ubyte",
              "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", "a25bea736e30d166cdddb491f175f624",
              60008),
    MnistFile("t10k-images-idx3-ubyte",
              "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", "2646ac647ad5339dbf082846283269ea",
              7840016),
    MnistFile("t10k-labels-idx1-ubyte",
              "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", "27ae3e4e09519cfbb04c329615203637",
              10008),
)}

MIRRORS: tuple[str, ...] = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)

_SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
           "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def missing_message(data_dir: Path) -> str:
    """The one message every command gives when MNIST is not found."""
    names = ", ".join(f"{n}.gz" for n in MNIST_FILES)
    return (f"MNIST not found in {data_dir} (nor in its MNIST/raw, torchvision's layout). Run 'digitlab data "
            f"fetch', or put the four files ({names}; raw or .gz) in that folder, or point --data-dir / "
            "DIGITLAB_DATA at a folder holding them.")


def _resolve(data_dir: str | os.PathLike[str] | None) -> Path:
    if data_dir is None:
        from digitlab.settings import get_settings
        return get_settings().data_dir
    return Path(data_dir)


def find_mnist(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Return the path of each of the four MNIST files in ``data_dir``.

    Raises
    ------
    DataNotFoundError
        When any file is missing, with the standard message.
    """
    root = _resolve(data_dir)
    for folder in mnist_folders(root):
        found: dict[str, Path] = {}
        for name in MNIST_FILES:
            for candidate in (folder / f"{name}.gz", folder / name, folder / name.replace("-idx", ".idx")):
                if candidate.is_file():
                    found[name] = candidate
                    break
        if len(found) == len(MNIST_FILES):
            return found
    raise DataNotFoundError(missing_message(root))


def mnist_folders(root: Path) -> list[Path]:
    """Where the four files may be under ``root``: the folder itself, then the layouts other tools leave.

    torchvision's ``datasets.MNIST(root)`` keeps them in ``root/MNIST/raw``, so
    ``--data-dir root``, ``--data-dir root/MNIST`` and ``--data-dir root/MNIST/raw``
    all find them.
    """
    return [root, root / "MNIST" / "raw", root / "raw"]


@lru_cache(maxsize=4)
def _load_cached(images: Path, labels: Path, mtime: float) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx_pair(images, labels)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def load_mnist(data_dir: str | os.PathLike[str] | None = None,
               split: Literal["train", "test"] | str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load one MNIST split.

    Parameters
    ----------
    data_dir : path-like, optional
        Folder of the four files; default from settings.
    split : {"train", "test"}

    Returns
    -------
    images : ndarray of uint8, shape (60000, 28, 28) or (10000, 28, 28), read-only
    labels : ndarray of int64, shape (n,), read-only
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    paths = find_mnist(data_dir)
    img, lab = (paths[n] for n in _SPLITS[split])
    return _load_cached(img.resolve(), lab.resolve(), img.stat().st_mtime + lab.stat().st_mtime)


def label_counts(data_dir: str | os.PathLike[str] | None = None) -> dict[str, list[int]]:
    """Images of each label 0-9 in each MNIST split: ``{"train": [5923, ...], "test": [980, ...]}``."""
    counts = {}
    for split in _SPLITS:
        _, labels = load_mnist(data_dir, split)
        counts[split] = np.bincount(labels, minlength=10).tolist()
    return counts


def _verify(name: str, data: bytes, source: str) -> None:
    """Check a file's decompressed bytes against MNIST's published sha256, never decompressing past its size."""
    expected = MNIST_FILES[name]
    h = hashlib.sha256()
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
                raw = g.read(expected.size + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(source, f"corrupt gzip data for {name}: {exc}") from None
    else:
        raw = data
    h.update(raw)
    if len(raw) != expected.size or h.hexdigest() != expected.sha256:
        raise DataError(source, f"checksum mismatch for {name}: the file is corrupt or not canonical MNIST")


ProgressFn = Callable[[str, int, int | None], None]

#: The most a download may send: ten times MNIST's largest compressed file.
_MAX_DOWNLOAD = 100 * 1024 * 1024


class _Retry(Exception):
    """A failed attempt worth repeating: a stalled or cut connection, or a server's temporary error."""


def _download(url: str, timeout: float, progress: ProgressFn | None, name: str) -> bytes:
    """One attempt at a file: ``timeout`` bounds the connection and every wait for data, not the whole transfer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            chunks, done = [], 0
            if progress:
                progress(name, 0, total)
            while chunk := resp.read1(1 << 16):  # what has arrived, so the bar moves on a slow link
                chunks.append(chunk)
                done += len(chunk)
                if done > _MAX_DOWNLOAD:
                    raise DataError(url, f"the server sent more than {_MAX_DOWNLOAD} bytes for {name}")
                if progress:
                    progress(name, done, total)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise
    except (TimeoutError, http.client.IncompleteRead, ConnectionResetError) as exc:
        raise _Retry(f"{type(exc).__name__}: {exc}" if str(exc) else "timed out") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _Retry(f"no answer within {timeout:g} s") from None
        raise
    if total is not None and done != total:
        raise _Retry(f"got {done} of {total} bytes")
    return b"".join(chunks)


def fetch_mnist(data_dir: str | os.PathLike[str] | None = None, *, source: str | os.PathLike[str] | None = None,
                mirrors: tuple[str, ...] = MIRRORS, timeout: float = 30.0, retries: int = 3,
                progress: ProgressFn | None = None) -> dict[str, Path]:
    """Download (or copy from ``source``) the four MNIST files, verified by checksum.

    Files already present and valid are kept. Each file is written atomically
    as ``<name>.gz`` once its decompressed bytes match the canonical sha256.
    Each file is fetched on its own: a slow link only makes it take longer,
    a stalled or cut transfer is tried again (``retries`` times per mirror,
    waiting 0.5 s, 1 s, ... between), and an unreachable mirror (no network,
    no such host, refused) is left at once for the next.

    Parameters
    ----------
    data_dir : path-like, optional
        Destination folder; default from settings.
    source : path-like, optional
        A local folder holding the files: copy from it instead of downloading.
    mirrors : tuple of str
        Base URLs tried in order.
    timeout : float
        Seconds to wait for a connection or for more data, per attempt at a
        file (not for the whole transfer).
    retries : int
        Attempts per mirror at a file whose transfer stalls, breaks or gets a
        server error.
    progress : callable(name, bytes_done, bytes_total or None), optional

    Returns
    -------
    dict of str to Path
        Where each file now is.

    Raises
    ------
    DigitlabError
        No mirror gave a file; the message names ``--timeout`` and ``--from``.
    DataError
        A file of ``source`` fails its checksum.
    """
    root = _resolve(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    result: dict[str, Path] = {}
    for name in MNIST_FILES:
        target = root / f"{name}.gz"
        if target.is_file():
            try:
                _verify(name, target.read_bytes(), str(target))
                result[name] = target
                continue
            except (DataError, OSError):
                pass  # re-fetch a corrupt file
        if source is not None:
            src = find_mnist(source)[name]
            data = src.read_bytes()
            _verify(name, data, str(src))
        else:
            data = _fetch_one(name, mirrors, timeout, max(1, retries), progress, root)
        with atomic_path(target) as tmp:
            tmp.write_bytes(data if data[:2] == b"\x1f\x8b" else gzip.compress(data))
        result[name] = target
    return result


def _fetch_one(name: str, mirrors: tuple[str, ...], timeout: float, retries: int, progress: ProgressFn | None,
               root: Path) -> bytes:
    errors: list[str] = []
    for base in mirrors:
        url = f"{base}{name}.gz"
        for attempt in range(retries):
            try:
                data = _download(url, timeout, progress, name)
                _verify(name, data, url)
                return data
            except _Retry as exc:
                errors.append(f"{base}: {exc}")
                if attempt + 1 < retries:
                    time.sleep(0.5 * 2**attempt)
            except (urllib.error.URLError, OSError, DataError) as exc:
                errors.append(f"{base}: {getattr(exc, 'reason', exc)}")
                break  # unreachable, refused or not MNIST: the next mirror
    names = ", ".join(f"{n}.gz" for n in MNIST_FILES)
    raise DigitlabError(
        f"could not download MNIST ({name}.gz: " + "; ".join(errors[-len(mirrors) * 2:] or ["no mirror"])
        + f"). On a slow link allow more seconds without data with --timeout (now {timeout:g}); without "
        f"network, put the four files ({names}; raw or .gz) in {root} by hand, or copy them from a folder with "
        "'digitlab data fetch --from DIR'.")
