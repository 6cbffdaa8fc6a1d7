"""File writing shared by all of digitlab: atomic, and with the user's umask.

Every report, figure, checkpoint, card and model folder digitlab writes goes
through :func:`atomic_path` or :func:`atomic_dir`: the content is written
beside the target under a temporary name and renamed over it only once it is
whole, so a crash never leaves a half-written file. Temporary files made by
:mod:`tempfile` are private (0600, folders 0700); here they get the
permissions a plain ``open(path, "w")`` or ``mkdir`` would give, that is
``0666`` or ``0777`` minus the process's umask.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_dir", "atomic_path", "atomic_write_bytes", "atomic_write_text", "stale_copies", "umask"]


def umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux ``/proc``).

    Elsewhere it is read by setting and restoring it, which is not atomic
    between threads; digitlab reads it that way only when ``/proc`` is missing.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    The file gets mode ``0666 & ~umask``. On any exception the temporary file
    is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            tmp_path.chmod(0o666 & ~umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it replaces ``path``.

    The folder gets mode ``0777 & ~umask``. An existing ``path`` is moved
    aside to a fresh ``.NAME.old.XXXX`` only once the new folder is complete,
    then removed; on any exception the temporary folder is removed and ``path``
    is untouched. Folders that an interrupted replace left behind
    (:func:`stale_copies`) are removed after a successful one and never block it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o777 & ~umask())
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old)  # onto an empty folder of our own: never blocked by a leftover
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
        for leftover in stale_copies(target):
            shutil.rmtree(leftover, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def stale_copies(path: str | os.PathLike[str]) -> list[Path]:
    """Earlier copies of folder ``path`` that an interrupted :func:`atomic_dir` left beside it, newest first.

    They are named ``.NAME.old`` (older digitlab) or ``.NAME.old.XXXX``. When
    ``path`` itself is missing, the newest of them is the last whole copy.
    """
    target = Path(path)
    if not target.parent.is_dir():
        return []
    found = [p for p in target.parent.iterdir()
             if p.is_dir() and (p.name == f".{target.name}.old" or p.name.startswith(f".{target.name}.old."))]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
