"""Fixtures of the CLI tests: a home holding a small nearest-centroid model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CENTROID = "centroid"


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory, small_train: tuple[np.ndarray, np.ndarray]) -> Path:
    """A DIGITLAB_HOME holding a nearest-centroid model fitted on 3000 MNIST images."""
    from digitlab.models import make_model
    from digitlab.models.card import ModelCard
    from digitlab.models.io import save_model

    home = tmp_path_factory.mktemp("cli-home")
    est = make_model(CENTROID).fit(*small_train)
    save_model(est, home / "models" / CENTROID, ModelCard(model=CENTROID, metrics={"test": {"accuracy": 0.8}}))
    return home
