"""Read a data file that may be gzip-compressed, never decompressing more than it declares.

A gzip file can expand a thousandfold, so the readers never call
``gzip.decompress`` on a whole file: they read a stream (:func:`open_data`) and
take only the bytes the file's own header promises (IDX's dimension sizes,
gzip's ``ISIZE`` trailer for CSV), then check that nothing follows.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from digitlab.errors import DataError

__all__ = ["GZIP_ERRORS", "MAX_DEFLATE_RATIO", "gzip_isize", "is_gzip", "open_data", "read_declared", "read_text"]

#: Deflate cannot expand data by more than about 1032:1; a header promising more than that is false.
MAX_DEFLATE_RATIO = 1032
#: What a corrupt gzip stream raises while it is read.
GZIP_ERRORS = (OSError, EOFError, zlib.error, gzip.BadGzipFile)


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts with gzip's magic bytes (whatever its name)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def gzip_isize(path: str | os.PathLike[str]) -> int:
    """The uncompressed size that a gzip file's trailer declares (``ISIZE``: the size modulo 2**32)."""
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return int(struct.unpack("<I", f.read(4))[0])


@contextmanager
def open_data(path: str | os.PathLike[str]) -> Iterator[tuple[BinaryIO, int, bool]]:
    """Open a raw or gzip-compressed file as a stream of its (decompressed) bytes.

    Yields
    ------
    (stream, size, compressed)
        ``size`` is the file's size on disk.

    Raises
    ------
    DataError
        The file cannot be read.
    """
    p = Path(path)
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed below, after the caller's block
    except OSError as exc:
        raise DataError(p, f"cannot read file: {exc.strerror or exc}") from None
    try:
        size = os.fstat(fh.fileno()).st_size
        compressed = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=fh, mode="rb") if compressed else fh  # type: ignore[assignment]
        yield stream, size, compressed
    finally:
        fh.close()


def read_declared(stream: BinaryIO, n: int, path: str | os.PathLike[str], what: str) -> bytes:
    """Read exactly the ``n`` bytes a header declared, then make sure the file holds nothing more.

    Raises
    ------
    DataError
        Fewer bytes (truncated), more bytes ("expands beyond what its header
        declares": a decompression bomb or a wrong header), or corrupt gzip data.
    """
    try:
        data = stream.read(n)
        extra = stream.read(1)
    except GZIP_ERRORS as exc:
        raise DataError(path, f"corrupt gzip data: {exc}") from None
    if len(data) < n:
        raise DataError(path, f"truncated: {what} declares {n} bytes, the file holds {len(data)}")
    if extra:
        raise DataError(path, f"the file holds more data than {what} declares ({n} bytes); it is corrupt or a "
                              "decompression bomb")
    return data


def read_text(path: str | os.PathLike[str], encoding: str = "utf-8-sig") -> str:
    """A text file's content, gunzipped when compressed, bounded by the size gzip's trailer declares."""
    p = Path(path)
    with open_data(p) as (stream, _size, compressed):
        if compressed:
            try:
                declared = gzip_isize(p)
            except OSError as exc:
                raise DataError(p, f"corrupt gzip data: {exc}") from None
            data = read_declared(stream, declared, p, "the gzip trailer")
        else:
            data = stream.read()
    try:
        return io.TextIOWrapper(io.BytesIO(data), encoding=encoding).read()
    except UnicodeDecodeError as exc:
        raise DataError(p, f"cannot read as text: {exc}") from None
