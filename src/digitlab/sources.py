"""Where ``digitlab score`` reads images from, cut into partitions that are read one batch at a time.

A SOURCE is any of

* a Parquet file, a folder of Parquet files or a glob of them, with a ``pixels`` column (a list of 784 numbers
  0-255 per row, as ``digitlab data export`` and DuckDB's ``UTINYINT[784]`` write it) or an ``image`` column
  (the bytes of a PNG, JPEG, ... file, or a ``{bytes, path}`` struct as Hugging Face datasets store images),
  plus any id column;
* an IDX images file (``.gz`` or raw) or a CSV file (784 pixel columns, or 785 with the label first or last);
* a folder of image files (searched recursively) or a glob of image files;
* a table of the store (``table:NAME``, or a bare NAME that is not a file), or ``mnist_train``/``mnist_test``.

:func:`plan_source` looks at the source once (file lists, Parquet footers, row counts, never the pixels) and
cuts it into :class:`Partition` s of at most ``partition_rows`` rows: runs of whole row groups of one Parquet
file, row ranges of an IDX file or table, one CSV file, chunks of image files. The plan is deterministic, so the
same command finds the same partitions again and a resumed run skips the finished ones.
:func:`read_partition` reads one partition as :class:`InputBatch` es of at most ``batch_size`` rows, so memory
stays flat however large the source is. A row whose image is bad (undecodable bytes, no ink, a wrong number of
pixels, a value outside 0-255) is kept, with the reason in ``errors``: one bad image never stops a run.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from digitlab.errors import DataError, NotFoundError, UserError
from digitlab.settings import Settings

__all__ = ["ID_KINDS", "InputBatch", "Partition", "SourcePlan", "plan_source", "read_partition"]

N_PIXELS = 784
#: The id column's Arrow type by id kind: a number (row number or an integer id column) or a string (a path).
ID_KINDS = {"int": pa.int64(), "str": pa.string()}
_GLOB = re.compile(r"[*?\[]")
_PARQUET = (".parquet", ".pq", ".parq")
_TABLE_PREFIX = "table:"


@dataclass(frozen=True)
class Partition:
    """One unit of work: rows of the source read by one worker and written to one output file.

    Attributes
    ----------
    index : int
        Its number in the plan (the output file is ``part-{index:05d}.parquet``).
    kind : {"parquet", "idx", "csv", "images", "table", "mnist"}
    path : str
        The file (parquet, idx, csv), the store's database (table) or the MNIST folder (mnist).
    rows : int
        Rows it holds: what the output file must hold once it is whole.
    start : int
        First row: in the file (idx, mnist, table: position in id order) or the first row group (parquet).
    row_groups : int
        Parquet row groups it spans from ``start``.
    files : tuple of str
        Image files (images).
    table : str
        Table name (table) or MNIST split (mnist).
    id_column : str
        Input column holding the ids (parquet, table); empty when the id is the row number.
    first_row : int
        Row number of the partition's first row in the whole source (the id when there is no id column).
    root : str
        Folder the image paths are given relative to (images).
    """

    index: int
    kind: str
    path: str
    rows: int
    start: int = 0
    row_groups: int = 0
    files: tuple[str, ...] = ()
    table: str = ""
    id_column: str = ""
    first_row: int = 0
    root: str = ""

    def to_json(self) -> dict[str, Any]:
        """The partition as a JSON-able dict (what the run's manifest records)."""
        d = asdict(self)
        d["files"] = list(self.files)
        return d


@dataclass(frozen=True)
class SourcePlan:
    """A source cut into partitions.

    Attributes
    ----------
    source : str
        As given.
    kind : str
        The partitions' kind.
    partitions : tuple of Partition
    id_name : str
        Name of the id column in the output (the input's id column, ``id`` for a row number, ``path`` for images).
    id_kind : {"int", "str"}
    image_column : {"pixels", "image"}
        What a Parquet source holds (``pixels`` for the other kinds).
    """

    source: str
    kind: str
    partitions: tuple[Partition, ...]
    id_name: str
    id_kind: str
    image_column: str = "pixels"
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows of the whole source."""
        return sum(p.rows for p in self.partitions)

    def fingerprint(self) -> str:
        """A digest of the partitions (files, row ranges, sizes): a resumed run must find the same plan."""
        doc = [p.to_json() for p in self.partitions]
        return hashlib.sha256(json.dumps([self.kind, self.id_name, self.image_column, doc]).encode()).hexdigest()


@dataclass
class InputBatch:
    """Rows of one partition, read.

    Attributes
    ----------
    partition : int
    offset : int
        Position of the first row in the partition.
    ids : pyarrow.Array
        One id per row (int64 or string).
    pixels : ndarray of float32, shape (n, 784)
        0-255; rows with an error hold zeros.
    errors : list of (str or None)
        Why a row's image cannot be scored, else None.
    """

    partition: int
    offset: int
    ids: pa.Array
    pixels: np.ndarray
    errors: list[str | None]

    def __len__(self) -> int:
        return len(self.errors)


# ------------------------------------------------------------------------------------------------ planning


def plan_source(source: str | os.PathLike[str], *, settings: Settings, partition_rows: int = 50_000,
                id_column: str | None = None) -> SourcePlan:
    """Cut ``source`` into partitions of at most ``partition_rows`` rows (see the module docstring).

    Raises
    ------
    NotFoundError
        No such file, folder, glob match or table.
    UserError
        A source of no known kind, mixed kinds in a glob or folder, a Parquet file without a ``pixels`` or
        ``image`` column, an ``id_column`` it lacks, or a ``partition_rows`` below 1.
    """
    if partition_rows < 1:
        raise UserError(f"--partition-rows must be at least 1, got {partition_rows}")
    text = os.fspath(source)
    if text.startswith(_TABLE_PREFIX):
        return _plan_table(text, text[len(_TABLE_PREFIX):], settings, partition_rows, id_column)
    if _GLOB.search(text):
        files = sorted(Path(f) for f in glob.glob(os.path.expanduser(text), recursive=True) if Path(f).is_file())
        if not files:
            raise NotFoundError(f"no file matches {text!r}")
        return _plan_files(text, files, None, partition_rows, id_column)
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and not _hidden(f.relative_to(path)))
        if not files:
            raise NotFoundError(f"the folder {text!r} holds no files")
        return _plan_files(text, files, path, partition_rows, id_column)
    if path.is_file():
        return _plan_files(text, [path], None, partition_rows, id_column)
    if text in ("mnist_train", "mnist_test") or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", text):
        return _plan_table(text, text, settings, partition_rows, id_column)
    raise NotFoundError(f"no source {text!r}: not a file, folder, glob or store table")


def _hidden(rel: Path) -> bool:
    return any(part.startswith((".", "_")) for part in rel.parts)


def _kind_of(f: Path) -> str | None:
    from digitlab.data.images import IMAGE_SUFFIXES

    name = f.name.lower()
    if name.endswith(_PARQUET):
        return "parquet"
    if name.removesuffix(".gz").endswith(".csv"):
        return "csv"
    if f.suffix.lower() in IMAGE_SUFFIXES:
        return "images"
    stem = name.removesuffix(".gz")
    if "idx" in stem or stem.endswith("ubyte"):
        return "idx"
    return None


def _plan_files(source: str, files: list[Path], root: Path | None, partition_rows: int,
                id_column: str | None) -> SourcePlan:
    kinds = {f: _kind_of(f) for f in files}
    known = {k for k in kinds.values() if k is not None}
    if root is not None:  # a folder: its image or Parquet files; stray files of other kinds are not the source
        for wanted in ("parquet", "images", "idx", "csv"):
            if wanted in known:
                files = [f for f in files if kinds[f] == wanted]
                known = {wanted}
                break
    unknown = [f for f in files if kinds[f] is None]
    if unknown:
        raise UserError(f"{unknown[0]}: not a Parquet, CSV, IDX or image file (by its name)")
    if len(known) != 1:
        raise UserError(f"{source!r} mixes {' and '.join(sorted(known))} files; score one kind at a time")
    kind = known.pop()
    if kind == "parquet":
        return _plan_parquet(source, files, partition_rows, id_column)
    if id_column is not None:
        raise UserError(f"--id-column is for Parquet sources and tables; {kind} sources are numbered by row")
    if kind == "images":
        base = root if root is not None else Path(os.path.commonpath([f.parent for f in files]))
        parts = [Partition(index=i, kind="images", path=str(base), rows=len(chunk), files=tuple(map(str, chunk)),
                           first_row=i * partition_rows, root=str(base))
                 for i, chunk in enumerate(_chunks(files, partition_rows))]
        return SourcePlan(source, "images", tuple(parts), id_name="path", id_kind="str")
    parts_l: list[Partition] = []
    first = 0
    for f in files:
        n = _idx_rows(f) if kind == "idx" else _csv_rows(f)
        step = n if kind == "csv" else partition_rows  # a CSV file is read as one stream
        for start in range(0, max(n, 1), max(step, 1)):
            rows = min(step, n - start) if n else 0
            parts_l.append(Partition(index=len(parts_l), kind=kind, path=str(f), rows=rows, start=start,
                                     first_row=first + start))
        first += n
    return SourcePlan(source, kind, tuple(parts_l), id_name="id", id_kind="int")


def _chunks(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _plan_parquet(source: str, files: list[Path], partition_rows: int, id_column: str | None) -> SourcePlan:
    import pyarrow.parquet as pq

    parts: list[Partition] = []
    image_column: str | None = None
    id_name, id_kind = "id", "int"
    first = 0
    for f in files:
        try:
            meta = pq.ParquetFile(f).metadata
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f, f"not a readable Parquet file ({exc})") from None
        names = set(meta.schema.to_arrow_schema().names)
        col = "pixels" if "pixels" in names else "image" if "image" in names else None
        if col is None:
            raise DataError(f, f"needs a 'pixels' column (784 values 0-255 per row) or an 'image' column (image "
                               f"file bytes); it has {', '.join(sorted(names))}")
        if image_column is None:
            image_column = col
        elif col != image_column:
            raise UserError(f"{f}: has an {col!r} column where the first file has {image_column!r}")
        wanted = id_column if id_column is not None else ("id" if "id" in names else None)
        if wanted is not None and wanted not in names:
            raise DataError(f, f"no id column {wanted!r}; columns: {', '.join(sorted(names))}")
        if wanted is not None:
            field_type = meta.schema.to_arrow_schema().field(wanted).type
            id_name = wanted
            id_kind = "int" if pa.types.is_integer(field_type) else "str"
        groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        g = 0
        while g < len(groups):
            rows, span = groups[g], 1
            while g + span < len(groups) and rows + groups[g + span] <= partition_rows:
                rows += groups[g + span]
                span += 1
            parts.append(Partition(index=len(parts), kind="parquet", path=str(f), rows=rows, start=g,
                                   row_groups=span, id_column=wanted or "", first_row=first))
            first += rows
            g += span
    return SourcePlan(source, "parquet", tuple(parts), id_name=id_name, id_kind=id_kind,
                      image_column=image_column or "pixels")


def _idx_header(f: Path) -> tuple[int, int]:
    """Images in an IDX images file and the data offset; checks it holds (n, 28, 28) unsigned bytes."""
    opener = gzip.open if _is_gzip(f) else open
    try:
        with opener(f, "rb") as fh:
            head = fh.read(16)
    except (OSError, EOFError) as exc:
        raise DataError(f, f"cannot read file: {exc}") from None
    if len(head) < 16 or head[:4] != b"\x00\x00\x08\x03":
        raise DataError(f, "not an IDX images file of unsigned bytes with 3 dimensions (magic 00000803)")
    n, h, w = struct.unpack(">3I", head[4:16])
    if (h, w) != (28, 28):
        raise DataError(f, f"expected 28x28 images, got {h}x{w}")
    return n, 16


def _is_gzip(f: Path) -> bool:
    with open(f, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _idx_rows(f: Path) -> int:
    return _idx_header(f)[0]


def _csv_rows(f: Path) -> int:
    """Data rows of a CSV file (lines that are not empty, less a header)."""
    opener = gzip.open if _is_gzip(f) else open
    n, first = 0, None
    with opener(f, "rb") as fh:
        for line in fh:
            if first is None:
                first = line
            if line.strip():
                n += 1
    if first is not None and _csv_header(first.decode("utf-8-sig", "replace")) is not None:
        n -= 1
    return n


def _csv_header(first_line: str) -> list[str] | None:
    fields = [v.strip().strip('"') for v in first_line.strip().split(",")]
    try:
        [float(v) for v in fields]
        return None
    except ValueError:
        return fields


def _plan_table(source: str, name: str, settings: Settings, partition_rows: int,
                id_column: str | None) -> SourcePlan:
    from digitlab.store import Store, check_name

    store = Store(settings.store_path)
    tables = store.tables() if store.path.exists() else []
    if name not in tables and name in ("mnist_train", "mnist_test"):
        from digitlab.data.mnist import find_mnist

        split = name.split("_")[1]
        images = Path(find_mnist(settings.data_dir)["train-images-idx3-ubyte" if split == "train"
                                                     else "t10k-images-idx3-ubyte"])
        n, _ = _idx_header(images)
        parts = tuple(Partition(index=i, kind="idx", path=str(images), rows=min(partition_rows, n - s), start=s,
                                first_row=s) for i, s in enumerate(range(0, n, partition_rows)))
        return SourcePlan(source, "idx", parts, id_name="id", id_kind="int", notes={"split": split})
    check_name(name)
    if name not in tables:
        raise NotFoundError(f"no file, folder or store table {name!r}; tables: {', '.join(tables) or 'none'}")
    wanted = id_column or "id"
    with store.connect(read_only=True) as con:
        cols = {r[0]: r[1] for r in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", [name]).fetchall()}
        if wanted not in cols:
            raise UserError(f"table {name!r} has no id column {wanted!r}; columns: {', '.join(cols)}")
        n = int(con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])  # type: ignore[index]
    id_kind = "int" if any(t in cols[wanted].upper() for t in ("INT",)) else "str"
    parts = tuple(Partition(index=i, kind="table", path=str(store.path), rows=min(partition_rows, n - s), start=s,
                            table=name, id_column=wanted, first_row=s)
                  for i, s in enumerate(range(0, n, partition_rows)))
    return SourcePlan(source, "table", parts, id_name=wanted, id_kind=id_kind)


# ------------------------------------------------------------------------------------------------- reading


def read_partition(part: Partition, batch_size: int, image_column: str = "pixels") -> Iterator[InputBatch]:
    """Read ``part`` as batches of at most ``batch_size`` rows, in order; the batches hold ``part.rows`` rows.

    Raises
    ------
    DataError
        The file is unreadable or no longer what the plan saw (fewer rows, another layout). A bad *image*
        is not an error: its row carries the reason.
    """
    readers = {"parquet": _read_parquet, "idx": _read_idx, "csv": _read_csv, "images": _read_images,
               "table": _read_table}
    seen = 0
    for batch in readers[part.kind](part, batch_size, image_column):
        seen += len(batch)
        yield batch
    if seen != part.rows:
        raise DataError(part.path, f"partition {part.index} held {seen} rows where {part.rows} were planned; the "
                                   "source changed since the run began")


def _int_ids(first: int, n: int) -> pa.Array:
    return pa.array(np.arange(first, first + n, dtype=np.int64))


def _read_parquet(part: Partition, batch_size: int, image_column: str) -> Iterator[InputBatch]:
    import pyarrow.parquet as pq

    columns = [image_column] + ([part.id_column] if part.id_column else [])
    try:
        pf = pq.ParquetFile(part.path)
        groups = list(range(part.start, part.start + part.row_groups))
        offset = 0
        for rb in pf.iter_batches(batch_size=batch_size, row_groups=groups, columns=columns):
            n = rb.num_rows
            ids = (_as_id(rb.column(part.id_column)) if part.id_column
                   else _int_ids(part.first_row + offset, n))
            if image_column == "image":
                pixels, errors = decode_images(_image_bytes(rb.column("image")))
            else:
                pixels, errors = pixels_from_lists(rb.column("pixels"))
            yield InputBatch(part.index, offset, ids, pixels, errors)
            offset += n
    except (OSError, pa.ArrowException) as exc:
        raise DataError(part.path, f"cannot read Parquet row groups {part.start}..{part.start + part.row_groups - 1}"
                                   f" ({exc})") from None


def _as_id(col: pa.Array) -> pa.Array:
    if pa.types.is_integer(col.type):
        return col.cast(pa.int64())
    return col.cast(pa.string())


def _image_bytes(col: pa.Array) -> list[bytes | None]:
    if pa.types.is_struct(col.type):
        col = col.field("bytes")
    blobs: list[bytes | None] = col.to_pylist()
    return blobs


def pixels_from_lists(col: pa.Array) -> tuple[np.ndarray, list[str | None]]:
    """A list (or fixed-size list) column of pixel values to ``(n, 784)`` float32 and each row's error.

    A row is bad when it is null, holds another number of values than 784, or a value that is null, not finite
    or outside 0-255.
    """
    import pyarrow.compute as pc

    n = len(col)
    fast = _whole_pixel_block(col)
    if fast is not None:
        return fast, [None] * n
    if pa.types.is_fixed_size_list(col.type):
        col = col.cast(pa.list_(col.type.value_type))
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        return np.zeros((n, N_PIXELS), np.float32), [f"pixels must be a list of 784 numbers, got {col.type}"] * n
    lengths = pc.fill_null(pc.list_value_length(col), -1).to_numpy(zero_copy_only=False)
    errors: list[str | None] = [None] * n
    pixels = np.zeros((n, N_PIXELS), np.float32)
    values = pc.list_flatten(col)  # the values of the non-null lists, in order
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        return pixels, [f"pixels must be numbers, got {values.type}"] * n
    flat = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)  # nulls become NaN
    starts = np.concatenate([[0], np.cumsum(np.maximum(lengths, 0))[:-1]])
    good = lengths == N_PIXELS
    if good.all():
        block = flat.reshape(n, N_PIXELS)
    else:
        for i in np.flatnonzero(~good):
            errors[i] = "no pixels (null)" if lengths[i] < 0 else f"expected 784 pixel values, got {lengths[i]}"
        rows = np.flatnonzero(good)
        block = np.zeros((n, N_PIXELS))
        if len(rows):
            block[rows] = flat[starts[rows, None] + np.arange(N_PIXELS)[None, :]]
    bad_value = good & ~np.all(np.isfinite(block) & (block >= 0) & (block <= 255), axis=1)
    for i in np.flatnonzero(bad_value):
        row = block[i]
        j = int(np.flatnonzero(~(np.isfinite(row) & (row >= 0) & (row <= 255)))[0])
        errors[i] = f"pixel {j} must be a number 0-255, got {row[j]:g}"
    ok = good & ~bad_value
    pixels[ok] = block[ok]
    return pixels, errors


def _whole_pixel_block(col: pa.Array) -> np.ndarray | None:
    """The common case in one step: no null, 784 values per row, all 0-255 (uint8 needs no check). Else None."""
    import pyarrow.compute as pc

    if col.null_count:
        return None
    if pa.types.is_fixed_size_list(col.type):
        if col.type.list_size != N_PIXELS:
            return None
    elif pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        lengths = pc.list_value_length(col)
        if len(col) and (pc.min(lengths).as_py() != N_PIXELS or pc.max(lengths).as_py() != N_PIXELS):
            return None
    else:
        return None
    values = col.flatten()
    if values.null_count or not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        return None
    block: np.ndarray = values.to_numpy(zero_copy_only=False).reshape(len(col), N_PIXELS)
    if block.dtype != np.uint8 and len(block) and not (
            np.isfinite(block).all() and block.min() >= 0 and block.max() <= 255):
        return None
    out: np.ndarray = block.astype(np.float32)
    return out


def decode_images(blobs: Sequence[bytes | None]) -> tuple[np.ndarray, list[str | None]]:
    """Image file bytes to MNIST-style ``(n, 784)`` float32 pixels (:func:`digitlab.preprocess.to_mnist`).

    A row that cannot be decoded, is too large or holds no digit gets the reason instead.
    """
    from digitlab.preprocess import decode_image, to_mnist

    pixels = np.zeros((len(blobs), N_PIXELS), np.float32)
    errors: list[str | None] = [None] * len(blobs)
    for i, data in enumerate(blobs):
        if not data:
            errors[i] = "no image bytes (null or empty)"
            continue
        try:
            pixels[i] = to_mnist(decode_image(data)).reshape(-1)
        except UserError as exc:
            errors[i] = str(exc)
        except Exception as exc:  # a decoder's own failure on a hostile file: the row's error, not the run's
            errors[i] = f"cannot decode image ({type(exc).__name__}: {exc})"
    return pixels, errors


def _read_idx(part: Partition, batch_size: int, image_column: str) -> Iterator[InputBatch]:
    f = Path(part.path)
    n, offset = _idx_header(f)
    if part.start + part.rows > n:
        raise DataError(f, f"holds {n} images; the plan expected at least {part.start + part.rows}")
    opener = gzip.open if _is_gzip(f) else open
    with opener(f, "rb") as fh:
        fh.seek(offset + part.start * N_PIXELS)  # a gzip stream seeks forwards by decompressing
        for a in range(0, part.rows, batch_size):
            k = min(batch_size, part.rows - a)
            raw = fh.read(k * N_PIXELS)
            if len(raw) != k * N_PIXELS:
                raise DataError(f, "truncated IDX data", record=part.start + a)
            pixels = np.frombuffer(raw, np.uint8).reshape(k, N_PIXELS).astype(np.float32)
            yield InputBatch(part.index, a, _int_ids(part.first_row + a, k), pixels, [None] * k)


def _read_csv(part: Partition, batch_size: int, image_column: str) -> Iterator[InputBatch]:
    import pyarrow.csv as pacsv

    f = Path(part.path)
    opener = gzip.open if _is_gzip(f) else open
    with opener(f, "rb") as fh:
        first = fh.readline().decode("utf-8-sig", "replace")
    header = _csv_header(first)
    width = len(first.strip().split(","))
    if width not in (N_PIXELS, N_PIXELS + 1):
        raise DataError(f, f"expected 784 pixel columns (785 with a label), got {width}", record=0)
    label_at: int | None = None  # with 785 columns: a header naming it, else the edge column that holds digits
    if width == N_PIXELS + 1 and header is not None:
        label_at = width - 1 if header[-1].lower() in ("label", "785") else 0
    names = [f"c{i}" for i in range(width)]
    opts = pacsv.ReadOptions(column_names=names, skip_rows=1 if header is not None else 0,
                             block_size=max(1 << 20, batch_size * width * 4))
    conv = pacsv.ConvertOptions(column_types={c: pa.float64() for c in names},
                                null_values=["", "NA", "nan", "NaN"], strings_can_be_null=True)
    offset = 0
    try:
        reader = pacsv.open_csv(f, read_options=opts, convert_options=conv)
        for rb in reader:
            cols = np.column_stack([rb.column(i).to_numpy(zero_copy_only=False) for i in range(width)])
            if width == N_PIXELS + 1:
                if label_at is None:
                    label_at = width - 1 if _looks_like_label(cols[:, -1]) and not _looks_like_label(cols[:, 0]) else 0
                cols = np.delete(cols, label_at, axis=1)
            for a in range(0, len(cols), batch_size):
                block = cols[a:a + batch_size]
                errors: list[str | None] = [None] * len(block)
                bad = ~np.all(np.isfinite(block) & (block >= 0) & (block <= 255), axis=1)
                for i in np.flatnonzero(bad):
                    j = int(np.flatnonzero(~(np.isfinite(block[i]) & (block[i] >= 0) & (block[i] <= 255)))[0])
                    errors[i] = f"pixel {j} must be a number 0-255, got {block[i, j]:g}"
                pixels = np.where(bad[:, None], 0, block).astype(np.float32)
                yield InputBatch(part.index, offset, _int_ids(part.first_row + offset, len(block)), pixels, errors)
                offset += len(block)
    except pa.ArrowInvalid as exc:
        raise DataError(f, f"malformed CSV after row {offset} ({str(exc).splitlines()[0]})") from None


def _looks_like_label(col: np.ndarray) -> bool:
    finite = col[np.isfinite(col)]
    return bool(len(finite)) and bool(np.all((finite >= 0) & (finite <= 9) & (finite == np.round(finite)))) \
        and len(np.unique(finite)) > 1


def _read_images(part: Partition, batch_size: int, image_column: str) -> Iterator[InputBatch]:
    from digitlab.limits import DEFAULT_LIMITS

    root = Path(part.root)
    for a in range(0, len(part.files), batch_size):
        chunk = part.files[a:a + batch_size]
        blobs: list[bytes | None] = []
        read_errors: dict[int, str] = {}
        for i, name in enumerate(chunk):
            try:
                size = os.stat(name).st_size
                if size > DEFAULT_LIMITS.max_file_bytes:
                    read_errors[i] = f"file is {size} bytes; at most {DEFAULT_LIMITS.max_file_bytes} are read"
                    blobs.append(None)
                    continue
                with open(name, "rb") as fh:
                    blobs.append(fh.read())
            except OSError as exc:
                read_errors[i] = f"cannot read file: {exc.strerror or exc}"
                blobs.append(None)
        pixels, errors = decode_images(blobs)
        for i, why in read_errors.items():
            errors[i] = why
        ids = pa.array([os.path.relpath(n, root) for n in chunk], pa.string())
        yield InputBatch(part.index, a, ids, pixels, errors)


def _read_table(part: Partition, batch_size: int, image_column: str) -> Iterator[InputBatch]:
    from digitlab.store import Store

    sql = (f'SELECT "{part.id_column}" AS id, pixels FROM "{part.table}" ORDER BY "{part.id_column}" '
           f"LIMIT {int(part.rows)} OFFSET {int(part.start)}")
    offset = 0
    with Store(part.path).connect(read_only=True) as con:
        reader: Any = con.sql(sql).to_arrow_reader(batch_size)
        for rb in reader:
            pixels, errors = pixels_from_lists(rb.column("pixels"))
            yield InputBatch(part.index, offset, _as_id(rb.column("id")), pixels, errors)
            offset += rb.num_rows
