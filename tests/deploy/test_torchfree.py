"""digitlab without torch: predict, explain and serve the bundled int8 CNN; what needs torch names the extra.

Where torch is installed, ``sys.modules["torch"] = None`` makes ``import torch`` fail as it does where it is
not, so these tests check the same behaviour in both of .ci/run's installs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from digitlab.errors import MissingExtraError

pytestmark = pytest.mark.torchfree

_SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import torch`` raises ImportError, as without the train extra.

    scikit-learn (and the scipy.stats it loads) is imported first: scipy probes for torch when it is first
    imported, and a torch that is installed but hidden half-way confuses it; without torch, it finds none.
    """
    import sklearn.linear_model  # noqa: F401

    monkeypatch.setitem(sys.modules, "torch", None)


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory: pytest.TempPathFactory, mnist_test) -> tuple[Path, int]:
    from PIL import Image

    x, y = mnist_test
    path = tmp_path_factory.mktemp("png") / "digit.png"
    Image.fromarray(x[0]).save(path)
    return path, int(y[0])


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": _SRC, "PATH": "/usr/bin:/bin"}, check=False)


def test_predict_default_imports_neither_torch_nor_scikit_learn(digit_png, tmp_path: Path) -> None:
    path, digit = digit_png
    code = ("import sys, runpy; sys.argv = ['digitlab', 'predict', 'default', sys.argv[1], '-f', 'json', '--home', "
            "sys.argv[2]]\ntry:\n    runpy.run_module('digitlab', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    r = _run(code, str(path), str(tmp_path / "home"))
    assert r.returncode == 0, r.stderr
    out, modules = r.stdout.strip().splitlines()
    assert json.loads(out)["predictions"][0]["digit"] == digit
    assert json.loads(out)["predictions"][0]["not_a_digit"] is False  # the bundled detector answers (issue 14)
    assert modules == "[]"


def test_the_cnn_estimator_loads_and_predicts_without_importing_torch(mnist_dir: Path) -> None:
    code = ("import sys, numpy as np\nfrom digitlab.models.io import load_model, bundled_dir\nfrom digitlab.data "
            "import load_mnist\nx, y = load_mnist(sys.argv[1], 'test')\nest = load_model(bundled_dir()).estimator\n"
            "print((est.predict(x[:500]) == y[:500]).mean(), 'torch' in sys.modules)")
    r = _run(code, str(mnist_dir))
    assert r.returncode == 0, r.stderr
    accuracy, imported = r.stdout.split()
    assert float(accuracy) >= 0.98 and imported == "False"


def test_without_torch_the_cnn_explains_by_occlusion_on_its_int8_graph(no_torch, mnist_test) -> None:
    from digitlab.explain import explain
    from digitlab.models.io import bundled_dir, load_model

    est = load_model(bundled_dir()).estimator
    x, y = mnist_test
    e = explain(est, x[0])
    assert e.method == "occlusion" and e.digit == y[0] and np.isfinite(e.contributions).all()
    assert e.contributions.sum() > 0  # blacking out the digit's ink lowers its score
    with pytest.raises(MissingExtraError, match=r"digitlab\[train\]"):
        est.integrated_gradients(x[:1], int(y[0]))


def test_without_torch_training_the_cnn_says_which_extra_to_install(no_torch, cli) -> None:
    r = cli("train", "cnn", "--dry-run")
    assert r.exit_code == 2
    assert "training the CNN needs torch" in r.stderr and "pip install 'digitlab[train]'" in r.stderr


def test_a_missing_extra_is_501_over_http() -> None:
    from digitlab.serve.errors import status_of

    assert status_of(MissingExtraError("training the CNN")) == 501


def test_the_server_without_torch_predicts_and_explains_with_the_bundled_cnn(no_torch, mnist_test, tmp_path: Path,
                                                                             mnist_dir) -> None:
    from fastapi.testclient import TestClient

    from digitlab.serve import create_app, serve_settings

    x, y = mnist_test
    settings = serve_settings(data_dir=mnist_dir, home=tmp_path / "home", freeze_gc=False,
                              allowed_hosts=("testserver",))  # the TestClient's Host
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/predict", json={"pixels": x[0].reshape(-1).tolist(), "explain": True})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["digit"] == y[0] and body["explanation_method"] == "occlusion"
        assert len(body["explanation"]) == 784
        got = [client.post("/v1/predict", json={"pixels": x[i].reshape(-1).tolist()}).json()["digit"]
               for i in range(1, 21)]
        assert np.mean(np.array(got) == y[1:21]) >= 0.95
