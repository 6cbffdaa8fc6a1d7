"""ONNX export of every family: the file agrees with the estimator, carries its metadata, needs nothing from digitlab.

Small models (600 training images) keep it fast; the CNN is the bundled one. Every test here runs without
torch too (the ``torchfree`` run of .ci/run).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from digitlab.errors import UserError
from digitlab.export import (
    METADATA_KEYS,
    CannotExportError,
    ExportCheckError,
    ExportSpec,
    OnnxPredictor,
    export_model,
    export_onnx,
    load_predictor,
)
from digitlab.models import make_model
from digitlab.models.card import ModelCard
from digitlab.models.io import bundled_dir, load_model, save_model

pytestmark = pytest.mark.torchfree

#: Every classifier family, with settings quick enough for 600 images.
FAMILIES = {
    "centroid": {},
    "logreg": {"max_iter": 30},
    "logreg-ovr": {"max_iter": 30, "multi_class": "ovr"},
    "sgd": {"digit": 7},
    "svm-linear": {},
    "svm-rbf": {},
    "svm-poly": {},
    "svm-sigmoid": {},
    "trees": {"n_bags": 2, "n_estimators": 8},
    "dpmm": {"digits": None, "chains": 2, "iters": 1},
}


@pytest.fixture(scope="module")
def data(mnist_train, mnist_test):
    x, y = mnist_train
    rng = np.random.default_rng(1)
    rows = rng.choice(len(y), 900, replace=False)
    fit, cal = rows[:600], rows[600:]
    xt, yt = mnist_test
    return x[fit], y[fit], x[cal], y[cal], xt[:1000], yt[:1000]


@pytest.fixture(scope="module")
def fitted(data):
    x, y, xc, yc, _, _ = data
    cache: dict[str, object] = {}

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, name: str):
            model = "logreg" if name == "logreg-ovr" else name
            est = make_model(model, **FAMILIES[name]).fit(x, y)
            est.calibrate(xc, yc)
            cache[name] = self[name] = est
            return est

    return Lazy()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_exports_and_the_file_predicts_as_the_model(name: str, fitted, data) -> None:
    import onnxruntime as ort

    est = fitted[name]
    _, _, _, _, xt, yt = data
    blob, check = export_onnx(est, xt, yt, name=name)
    assert check.passed and check.n == 1000 and check.labels_equal == 1000 and check.max_abs_diff <= 1e-4
    # plain ONNX Runtime, uint8 in: the calibrated probabilities of predict_proba, and the class labels
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"] and session.get_inputs()[0].type == "tensor(uint8)"
    assert [o.name for o in session.get_outputs()] == ["probabilities", "label"]
    proba, label = session.run(None, {"pixels": xt[:200].reshape(200, 784)})
    expected = est.predict_proba(xt[:200].reshape(200, 784))
    np.testing.assert_allclose(proba, expected, atol=1e-4)
    np.testing.assert_array_equal(label, est.predict(xt[:200]))
    assert est.temperature_ != 1.0  # the calibration is in the file (the probabilities above include it)
    meta = session.get_modelmeta().custom_metadata_map
    assert set(METADATA_KEYS) <= set(meta)
    assert meta["family"] == est.family and json.loads(meta["classes"]) == np.asarray(est.classes_).tolist()
    assert float(meta["temperature"]) == pytest.approx(est.temperature_, rel=1e-5)


def test_the_image_layout_takes_n_1_28_28(fitted, data) -> None:
    blob, _ = export_onnx(fitted["logreg"], data[4], layout="image")
    p = OnnxPredictor(blob)
    assert p.session.get_inputs()[0].shape[1:] == [1, 28, 28]
    np.testing.assert_array_equal(p.predict(data[4][:50]), fitted["logreg"].predict(data[4][:50]))


def test_a_model_fitted_on_0_1_pixels_exports_taking_0_255_pixels(data) -> None:
    x, y, _, _, xt, _ = data
    est = make_model("logreg", max_iter=30).fit(x / 255.0, y)
    blob, check = export_onnx(est, xt)
    assert check.passed
    np.testing.assert_allclose(OnnxPredictor(blob).predict_proba(xt[:20]), est.predict_proba(xt[:20] / 255.0),
                               atol=1e-4)


def test_a_model_of_non_pixel_features_cannot_be_exported(data) -> None:
    x, y, _, _, xt, _ = data
    est = make_model("logreg", max_iter=10).fit((x.reshape(len(x), -1) - 128.0) / 64.0, y)
    with pytest.raises(CannotExportError, match="not pixels"):
        export_onnx(est, xt)


def test_a_failing_check_raises_and_writes_nothing(fitted, data, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    import digitlab.export as ex

    real = ex._assemble

    def wrong_temperature(core, classes, temperature, layout, n_features):  # type: ignore[no-untyped-def]
        return real(core, classes, temperature * 3, layout, n_features)

    monkeypatch.setattr(ex, "_assemble", wrong_temperature)
    with pytest.raises(ExportCheckError, match="nothing was written"):
        export_onnx(fitted["centroid"], data[4])


def test_export_model_writes_a_checked_file_with_the_card_in_its_metadata(fitted, mnist_dir, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from digitlab.settings import get_settings

    home = tmp_path / "home"
    card = ModelCard(model="centroid", metrics={"test": {"accuracy": 0.8123}})
    save_model(fitted["centroid"], home / "models" / "cen", card)
    settings = get_settings(data_dir=mnist_dir, home=home)
    result = export_model(ExportSpec(model="cen", out=home / "models" / "cen" / "model.onnx", n_check=300),
                          settings=settings)
    assert result.check.passed and result.check.n == 300 and result.path.is_file()
    assert result.metadata["test_accuracy"] == "0.812300" and result.metadata["name"] == "cen"
    # written into the model's own folder and of its weights: digitlab predict uses it
    predictor = load_predictor(home / "models" / "cen")
    assert predictor is not None
    with pytest.raises(CannotExportError, match=r"\.onnx"):
        export_model(ExportSpec(model="cen", out=tmp_path / "x.txt"), settings=settings)


def test_a_stale_export_is_ignored(fitted, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    save_model(fitted["centroid"], folder, ModelCard(model="centroid"))
    blob, _ = export_onnx(fitted["centroid"], np.zeros((2, 784), np.uint8), weights_sha256="0" * 64)
    (folder / "model.onnx").write_bytes(blob)
    assert load_predictor(folder) is None


def test_the_bundled_cnn_export_is_current_and_needs_nothing_from_digitlab(mnist_test) -> None:
    """The shipped model.onnx: of the bundled weights, int8, >= 99.5 % on MNIST test through plain ONNX Runtime."""
    import onnxruntime as ort

    assert load_predictor(bundled_dir()) is not None, ("src/digitlab/bundled/default/model.onnx is not of the "
                                                       "bundled weights: run 'digitlab export default --out "
                                                       "src/digitlab/bundled/default/model.onnx'")
    session = ort.InferenceSession(str(bundled_dir() / "model.onnx"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    card = load_model(bundled_dir()).card
    assert meta["model"] == "cnn" and meta["precision"] == "int8" and meta["layout"] == "flat"
    assert meta["train_sha256"] == card.train.sha256 and float(meta["test_accuracy"]) == pytest.approx(
        card.test_accuracy, abs=1e-6)
    assert "MNIST-style" in meta["preprocessing"] and json.loads(meta["export_check"])["passed"]
    x, y = mnist_test
    label = np.concatenate([session.run(["label"], {"pixels": x[i:i + 2000].reshape(-1, 784)})[0]
                            for i in range(0, len(x), 2000)])
    assert (label == y).mean() >= 0.995


def test_the_bundled_cnn_exports_again_identically_checked(mnist_test) -> None:
    est = load_model(bundled_dir()).estimator
    blob, check = export_onnx(est, mnist_test[0][:1000], mnist_test[1][:1000])
    assert check.passed and check.tolerance == 1e-2 and check.accuracy >= 0.99
    assert OnnxPredictor(blob).metadata["precision"] == "int8"


def test_the_predictor_refuses_0_1_pixels() -> None:
    p = load_predictor(bundled_dir())
    assert p is not None
    with pytest.raises(UserError, match="0-255"):
        p.predict_proba(np.full((1, 784), 0.5))


def test_cli_export(cli, tmp_path: Path) -> None:
    out = tmp_path / "d.onnx"
    r = cli("export", "default", "--format", "onnx", "--out", out, "--check", "200", "--output", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["check"]["passed"] and doc["precision"] == "int8" and out.is_file()
    bad = cli("export", "default", "--out", tmp_path / "d.txt")
    assert bad.exit_code == 2 and ".onnx" in bad.stderr


def _docs_example() -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    example = next(b for b in blocks if "onnxruntime" in b)
    assert len(example.strip().splitlines()) <= 12
    return example


def test_the_docs_example_loads_the_file_with_plain_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 mnist_test) -> None:
    import shutil

    from PIL import Image

    shutil.copy(bundled_dir() / "model.onnx", tmp_path / "model.onnx")
    x, y = mnist_test
    Image.fromarray(x[0]).save(tmp_path / "digit.png")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(_docs_example(), "docs/deploy.md", "exec"), scope)
    assert scope["digit"] == y[0]
