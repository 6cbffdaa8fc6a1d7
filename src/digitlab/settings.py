"""Where digitlab keeps things: one typed settings object.

Precedence for every location is: explicit argument (``--data-dir``,
``--home``), then the environment (``DIGITLAB_DATA``, ``DIGITLAB_HOME``),
then the user's per-platform folders from :mod:`platformdirs`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = ["Settings", "get_settings"]

_APP = "digitlab"


@dataclass(frozen=True)
class Settings:
    """Resolved locations.

    Attributes
    ----------
    data_dir : Path
        Folder holding the four MNIST IDX files (``*.gz`` or raw).
    home : Path
        digitlab's own folder: the DuckDB store and trained models.
    """

    data_dir: Path
    home: Path

    @property
    def store_path(self) -> Path:
        """The DuckDB database file."""
        return self.home / "digitlab.duckdb"

    @property
    def models_dir(self) -> Path:
        """Folder of saved models, one sub-folder per model name."""
        return self.home / "models"


def get_settings(data_dir: str | os.PathLike[str] | None = None,
                 home: str | os.PathLike[str] | None = None) -> Settings:
    """Resolve locations from arguments, then environment, then defaults."""
    data = data_dir or os.environ.get("DIGITLAB_DATA") or platformdirs.user_cache_dir(_APP)
    home_ = home or os.environ.get("DIGITLAB_HOME") or platformdirs.user_data_dir(_APP)
    return Settings(data_dir=Path(data).expanduser(), home=Path(home_).expanduser())
