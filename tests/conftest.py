"""Shared fixtures.

MNIST is found where the CLI finds it: ``$DIGITLAB_DATA``, else ``../shared/data/mnist`` beside the
repository (CI), else the user cache folder that ``digitlab data fetch`` fills. Tests never download.
Every test that uses the MNIST fixtures is marked ``mnist`` automatically, so ``pytest -m "not mnist"``
runs the fast tier without the data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from typer.testing import CliRunner

if TYPE_CHECKING:
    from digitlab.data import PenDigits

_REPO = Path(__file__).resolve().parents[1]
_DEFAULT_DATA = _REPO.parent / "shared" / "data" / "mnist"


def _has_mnist(path: Path) -> bool:
    return (path / "train-images-idx3-ubyte.gz").exists() or (path / "train-images-idx3-ubyte").exists()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test whose fixtures need MNIST with ``mnist``."""
    for item in items:
        if "mnist_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mnist)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the four MNIST files."""
    from digitlab.settings import get_settings

    candidates = [Path(os.environ["DIGITLAB_DATA"])] if os.environ.get("DIGITLAB_DATA") else []
    candidates += [_DEFAULT_DATA, get_settings().data_dir]
    for path in candidates:
        if _has_mnist(path):
            return path
    pytest.fail(f"MNIST not found in {', '.join(map(str, candidates))}: run `digitlab data fetch`, or set "
                "DIGITLAB_DATA to the folder holding the four MNIST files; `pytest -m 'not mnist'` runs the "
                "tests that need no data", pytrace=False)


@pytest.fixture(scope="session")
def mnist_train(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST train images (60000, 28, 28) uint8 and labels (60000,)."""
    from digitlab.data import load_mnist
    return load_mnist(mnist_dir, "train")


@pytest.fixture(scope="session")
def mnist_test(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST test images (10000, 28, 28) uint8 and labels (10000,)."""
    from digitlab.data import load_mnist
    return load_mnist(mnist_dir, "test")


@pytest.fixture(scope="session")
def pen_digits(mnist_dir: Path) -> PenDigits:
    """The shared pendigits file (30 writers, UNIPEN), found beside MNIST (``../pendigits``)."""
    from digitlab.data import read_unipen

    path = mnist_dir.parent / "pendigits" / "pendigits-orig.tra.gz"
    if not path.exists():
        pytest.skip(f"the pen digits are not at {path} (../shared/data/pendigits beside MNIST)")
    return read_unipen(path)


@pytest.fixture(scope="session")
def small_train(mnist_train: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A stratified sample of 3000 MNIST training images (300 per digit), fixed seed."""
    x, y = mnist_train
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == d), 300, replace=False) for d in range(10)])
    rng.shuffle(idx)
    return x[idx], y[idx]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_dir: Path) -> Path:
    """A fresh $DIGITLAB_HOME for one test, with $DIGITLAB_DATA pointing at MNIST."""
    h = tmp_path / "home"
    monkeypatch.setenv("DIGITLAB_HOME", str(h))
    monkeypatch.setenv("DIGITLAB_DATA", str(mnist_dir))
    return h


@pytest.fixture
def runner() -> CliRunner:
    """Typer's CliRunner (stdout and stderr kept apart)."""
    return CliRunner()


@pytest.fixture
def cli(runner: CliRunner, home: Path):
    """Invoke ``digitlab ARGS...`` in-process with a fresh home; returns the Result."""
    from digitlab.cli import app

    def invoke(*args: str, **kwargs):
        return runner.invoke(app, [str(a) for a in args], **kwargs)

    return invoke


@pytest.fixture(scope="session")
def ray_local():
    """A real Ray on this machine (2 CPUs), started once for the session and shut down at its end.

    Engines given no address use it as it is (``digitlab.engines.ray_session``). Skipped when Ray is not
    installed (``pip install -e '.[ray]'``; CI installs it).
    """
    import logging

    from digitlab.engines import LOOPBACK_ONLY

    os.environ.setdefault(LOOPBACK_ONLY, "0")  # before Ray is imported: its node on 127.0.0.1 only
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
    for attempt in range(3):  # on a loaded machine Ray's processes can miss their 30-second start-up deadline
        try:
            ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False)  # "local": a new Ray, whatever an earlier `ray start` left behind
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield ray
    ray.shutdown()
