"""Corrections: drawings a model got wrong, stored with their true label in the store's table ``drawings``.

Each correction is one row of ``drawings``:

==============  ===================  ====================================================
``id``          ``BIGINT``           unique: the correction's time in microseconds
``created``     ``TIMESTAMP``        UTC
``profile``     ``VARCHAR``          who taught it (``[A-Za-z0-9_-]{1,64}``), or NULL
``label``       ``UTINYINT``         the true digit
``predicted``   ``UTINYINT``         what the model answered
``model``       ``VARCHAR``          the model that answered
``strokes``     ``JSON``             ``{"strokes", "width", "height", "pen_width"}`` when drawn
``pixels``      ``UTINYINT[784]``    the 28x28 input the model saw, row-major
==============  ===================  ====================================================

so ``id``, ``label`` and ``pixels`` make it a dataset table like the others:
``digitlab train --table drawings``, ``digitlab sql``, ``digitlab data export
drawings``.

:class:`Corrections` is what a server holds: it writes corrections so that
none is lost (staged beside the store, flushed to disk, then applied:
:meth:`~digitlab.store.Store.append`) and keeps each profile in memory
(:class:`~digitlab.profiles.Profile`) for predictions to adapt to. The store
stays the one truth: several server processes (``digitlab serve --workers
N``) share it, and each notices another's change of a profile through a
small journal file per profile beside the store (``digitlab.duckdb.profiles/``,
one byte appended per change), a ``stat`` per request.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from digitlab.errors import NotFoundError, UserError
from digitlab.profiles import PROFILE_NAME, Profile, check_profile_name
from digitlab.store import PendingWrite, Store

__all__ = ["DRAWINGS", "PROFILE_NAME", "SCHEMA", "Corrections", "Stored", "check_profile_name", "read_profile"]

#: The table of corrections.
DRAWINGS = "drawings"
#: The table's definition (created by the first correction).
SCHEMA = (f"CREATE TABLE IF NOT EXISTS {DRAWINGS} (id BIGINT, created TIMESTAMP, profile VARCHAR, label UTINYINT, "
          "predicted UTINYINT, model VARCHAR, strokes JSON, pixels UTINYINT[784])")
_ARROW = pa.schema([("id", pa.int64()), ("created", pa.timestamp("us")), ("profile", pa.string()),
                    ("label", pa.uint8()), ("predicted", pa.uint8()), ("model", pa.string()),
                    ("strokes", pa.string()), ("pixels", pa.list_(pa.uint8(), 784))])
#: The journal name of the corrections given without a profile (a name no profile can have).
_NO_PROFILE = ".none"


@dataclass(frozen=True)
class Stored:
    """A correction as written.

    Attributes
    ----------
    id : int
    profile : str or None
    count : int
        The profile's corrections, this one included.
    applied : bool
        In the database now; False when the store was busy and it waits, staged (and safe), for the next write.
    """

    id: int
    profile: str | None
    count: int
    applied: bool


class _Ids:
    """Unique, increasing ids: the time in microseconds, one more than the last when the clock has not moved."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last


_IDS = _Ids()


def _fsync_dir_tree(folder: Path) -> None:
    """Flush a staged write's files and folders to the disk, so that it survives a crash of the machine too."""
    for path in [*sorted(folder.iterdir()), folder, folder.parent]:
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
        with contextlib.suppress(OSError):  # a file system that cannot sync folders
            fd = os.open(path, flags)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _table_exists(store: Store) -> bool:
    with store.connect(read_only=True) as con:
        row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                          [DRAWINGS]).fetchone()
    return bool(row and row[0])


def read_profile(store: Store, name: str | None, *, pixels: bool = True) -> Profile:
    """A profile's corrections as the store holds them, staged ones included.

    Parameters
    ----------
    store : Store
    name : str or None
        The profile; None for the corrections given without one.
    pixels : bool, default=True
        Read the pixels (False: ids and labels only; the profile's ``pixels`` is empty).

    Raises
    ------
    StoreBusyError
        Another process held the store for longer than its timeout.
    """
    columns = "id, label" + (", pixels" if pixels else "")
    condition = "profile IS NULL" if name is None else "profile = ?"
    parts: list[pa.Table] = []
    if store.path.exists() and _table_exists(store):
        with store.connect(read_only=True) as con:
            parts.append(con.sql(f"SELECT {columns} FROM {DRAWINGS} WHERE {condition} ORDER BY id",
                                 params=None if name is None else [name]).to_arrow_table())
    staged = store.pending_rows(DRAWINGS)
    if staged is not None:
        mask = pc.is_null(staged["profile"]) if name is None else pc.equal(staged["profile"], name)
        parts.append(staged.filter(mask.fill_null(False)).select(columns.split(", ")))
    ids_list: list[NDArray[np.int64]] = []
    labels_list: list[NDArray[np.int64]] = []
    pixels_list: list[NDArray[np.uint8]] = []
    for tbl in parts:
        if tbl.num_rows == 0:
            continue
        ids_list.append(tbl["id"].to_numpy().astype(np.int64))
        labels_list.append(tbl["label"].to_numpy().astype(np.int64))
        if pixels:
            flat = tbl["pixels"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
            pixels_list.append(np.asarray(flat, dtype=np.uint8).reshape(-1, 784))
    if not ids_list:
        return Profile(name)
    ids = np.concatenate(ids_list)
    _, first = np.unique(ids, return_index=True)  # a staged write applied while we read appears twice
    keep = np.sort(first)
    if not pixels:
        return Profile(name, ids[keep], np.concatenate(labels_list)[keep])
    return Profile(name, ids[keep], np.concatenate(labels_list)[keep], np.concatenate(pixels_list)[keep])


class Corrections:
    """A server's corrections: written so that none is lost, and every profile at hand for predictions.

    Parameters
    ----------
    store : Store
        The shared store. The server holds it only while it writes a correction or forgets a profile.
    max_profiles : int, default=256
        Profiles kept in memory (the least recently used are dropped, and read again when next used).

    Notes
    -----
    Thread-safe. Every method that reads or writes the store blocks: call it from a worker thread.
    """

    def __init__(self, store: Store, *, max_profiles: int = 256) -> None:
        self.store = store
        self.max_profiles = max_profiles
        self._profiles: OrderedDict[str, tuple[tuple[int, int] | None, Profile]] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def journal_dir(self) -> Path:
        """Where the journal files are: ``<store>.profiles/``."""
        return self.store.path.with_name(self.store.path.name + ".profiles")

    def _journal(self, name: str | None) -> Path:
        return self.journal_dir / (_NO_PROFILE if name is None else name)

    def _stamp(self, name: str | None) -> tuple[int, int] | None:
        try:
            st = os.stat(self._journal(name))
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def _touch(self, name: str | None) -> tuple[tuple[int, int] | None, bool]:
        """Append a byte to the profile's journal; returns its new stamp and whether no other process wrote too."""
        before = self._stamp(name)
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        with open(self._journal(name), "ab") as f:
            f.write(b".")
        after = self._stamp(name)
        alone = after is not None and after[0] == (before[0] if before else 0) + 1
        return after, alone

    def _keep(self, key: str, stamp: tuple[int, int] | None, profile: Profile) -> None:
        self._profiles[key] = (stamp, profile)
        self._profiles.move_to_end(key)
        while len(self._profiles) > self.max_profiles:
            self._profiles.popitem(last=False)

    # ------------------------------------------------------------------ reading

    def cached(self, name: str) -> Profile | None:
        """The profile if it is in memory and no other process changed it since (a ``stat``, no store access)."""
        held = self._profiles.get(name)
        if held is None or held[0] != self._stamp(name):
            return None
        return held[1]

    def profile(self, name: str | None) -> Profile:
        """The profile as the store holds it now: from memory, or read again when another process changed it.

        Raises
        ------
        StoreBusyError
            The profile had to be read and another process held the store for longer than its timeout.
        """
        key = _NO_PROFILE if name is None else check_profile_name(name)
        with self._lock:
            stamp = self._stamp(name)
            held = self._profiles.get(key)
            if held is not None and held[0] == stamp:
                self._profiles.move_to_end(key)
                return held[1]
            profile = read_profile(self.store, name, pixels=name is not None)
            if held is not None and len(held[1]) and len(profile):
                profile = _carry_embeddings(held[1], profile)
            self._keep(key, stamp, profile)
            return profile

    def counts(self, name: str) -> list[int]:
        """Corrections per digit 0-9 of profile ``name``.

        Raises
        ------
        NotFoundError
            The profile has no corrections.
        """
        profile = self.profile(name)
        if not len(profile):
            raise NotFoundError(f"no profile {name!r}: it has no corrections (POST /v1/corrections with "
                                f"\"profile\": \"{name}\" makes one)")
        return profile.counts()

    # ------------------------------------------------------------------ writing

    def add(self, *, pixels: NDArray[np.floating] | NDArray[np.integer], label: int, profile: str | None,
            predicted: int | None, model: str | None, strokes: Mapping[str, Any] | None = None) -> Stored:
        """Store one correction, durably, and add it to its profile.

        Parameters
        ----------
        pixels : ndarray, shape (784,) or (28, 28)
            The normalised input the model saw (0-255; rounded to integers).
        label : int
            The true digit, 0-9.
        profile : str or None
        predicted : int or None
            What the model answered.
        model : str or None
            The model that answered.
        strokes : mapping, optional
            The drawing as sent (``strokes``, ``width``, ``height``, ``pen_width``), kept as JSON.

        Returns
        -------
        Stored
            Once it returns, the correction is on disk (staged and synced), whatever happens next; ``applied``
            says whether it is in the database yet (else the next write to the store applies it).

        Raises
        ------
        UserError
            A bad label, profile name or pixels.
        """
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
            raise UserError(f"label must be a digit 0-9, got {label!r}")
        if profile is not None:
            check_profile_name(profile)
        flat = np.asarray(pixels, dtype=np.float64).reshape(-1)
        if flat.shape != (784,) or not np.isfinite(flat).all():
            raise UserError(f"pixels must be 784 finite values, got shape {np.shape(pixels)}")
        image = np.clip(np.rint(flat), 0, 255).astype(np.uint8)
        key = _NO_PROFILE if profile is None else profile
        with self._lock:
            current = self.profile(profile)
            id_ = _IDS.next()
            row = {"id": id_, "created": datetime.now(UTC).replace(tzinfo=None), "profile": profile,
                   "label": int(label), "predicted": None if predicted is None else int(predicted),
                   "model": model, "strokes": None if strokes is None else json.dumps(dict(strokes)),
                   "pixels": image.tolist()}
            write = self.store.stage({DRAWINGS: pa.Table.from_pylist([row], schema=_ARROW)}, [SCHEMA])
            _fsync_dir_tree(write.path)
            stamp, alone = self._touch(profile)
            grown = (current.with_drawing(id_, int(label), image) if profile is not None else
                     Profile(None, np.append(current.ids, np.int64(id_)), np.append(current.labels, np.int64(label))))
            if alone:
                self._keep(key, stamp, grown)
            else:  # another process changed the profile meanwhile: read it again next time
                self._profiles.pop(key, None)
            count = len(grown) if alone else len(current) + 1
        return Stored(id=id_, profile=profile, count=count, applied=self._flush(write))

    def _flush(self, write: PendingWrite) -> bool:
        return self.store.flush(write)

    def forget(self, name: str) -> int:
        """Delete profile ``name`` and all its drawings from the store; returns how many were deleted.

        Raises
        ------
        NotFoundError
            The profile has no corrections.
        StoreBusyError
            Another process held the store for longer than its timeout (nothing was deleted).
        """
        check_profile_name(name)
        with self._lock:
            if not len(self.profile(name)):
                raise NotFoundError(f"no profile {name!r}: it has no corrections")
            with self.store.transaction() as con:  # applies staged corrections first
                row = con.execute(f"SELECT count(*) FROM {DRAWINGS} WHERE profile = ?", [name]).fetchone()
                con.execute(f"DELETE FROM {DRAWINGS} WHERE profile = ?", [name])
            stamp, alone = self._touch(name)
            if alone:
                self._keep(name, stamp, Profile(name))
            else:
                self._profiles.pop(name, None)
            return int(row[0]) if row else 0


def _carry_embeddings(old: Profile, new: Profile) -> Profile:
    """``new`` with ``old``'s embeddings when ``new`` only adds drawings after ``old``'s (no re-embedding)."""
    n = len(old)
    if len(new) >= n and np.array_equal(new.ids[:n], old.ids):
        grown = old
        for i in range(n, len(new)):
            grown = grown.with_drawing(int(new.ids[i]), int(new.labels[i]), new.pixels[i])
        return grown
    return new
