"""Fixtures for the server tests: a home with a small nearest-centroid model, an app and a client."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ._helpers import TEST_SETTINGS

CENTROID = "centroid"


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory, small_train: tuple[np.ndarray, np.ndarray]) -> Path:
    """A DIGITLAB_HOME holding a nearest-centroid model fitted on 3000 MNIST images."""
    from digitlab.models import make_model
    from digitlab.models.card import ModelCard
    from digitlab.models.io import save_model

    home = tmp_path_factory.mktemp("serve-home")
    est = make_model(CENTROID).fit(*small_train)
    save_model(est, home / "models" / CENTROID, ModelCard(model=CENTROID, metrics={"test": {"accuracy": 0.8}}))
    return home


@pytest.fixture(scope="session")
def settings(model_home: Path, mnist_dir: Path):
    """Server settings on that home, with the centroid as default model.

    The picture limit is 4 megapixels (the default, 16, is the 4000 px side squared) so that the pixel-count
    rule can be tested apart from the side rule.
    """
    from dataclasses import replace

    from digitlab.limits import DEFAULT_LIMITS
    from digitlab.serve import serve_settings

    return serve_settings(data_dir=mnist_dir, home=model_home, default_model=CENTROID, **TEST_SETTINGS,
                          limits=replace(DEFAULT_LIMITS, max_image_pixels=4_000_000))


@pytest.fixture(scope="module")
def client(settings):
    """A TestClient on a fresh app (lifespan run), shared by a test module."""
    from fastapi.testclient import TestClient

    from digitlab.serve import create_app

    with TestClient(create_app(settings)) as c:
        yield c
