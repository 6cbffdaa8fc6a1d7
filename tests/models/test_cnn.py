"""The CNN estimator: tiny fits, persistence, checkpoint/resume, and the bundled model's accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from digitlab.errors import UserError  # noqa: E402
from digitlab.models.card import ModelCard  # noqa: E402
from digitlab.models.cnn import CNNClassifier  # noqa: E402

# Tiny, deterministic settings: small width, no augmentation, float32 PyTorch predictions, one thread.
TINY = {"recipe": "fast", "width": 6, "batch_size": 64, "augment": "none", "bf16": False, "int8": False,
        "n_threads": 1, "seed": 3}


@pytest.fixture(scope="module")
def tiny_data(small_train: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    x, y = small_train
    return x[:600], y[:600]


@pytest.fixture(scope="module")
def tiny_cnn(tiny_data: tuple[np.ndarray, np.ndarray]) -> CNNClassifier:
    x, y = tiny_data
    return CNNClassifier(**TINY, epochs=2).fit(x, y)


@pytest.fixture(scope="module")
def int8_cnn(tiny_data: tuple[np.ndarray, np.ndarray]) -> CNNClassifier:
    x, y = tiny_data
    return CNNClassifier(**{**TINY, "int8": True}, epochs=2).fit(x, y)


def test_tiny_fit_learns(tiny_cnn: CNNClassifier, small_train: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = small_train
    held_out = (tiny_cnn.predict(x[600:1600]) == y[600:1600]).mean()
    assert held_out > 0.6, held_out                 # chance is 0.1
    assert [h["epoch"] for h in tiny_cnn.history_] == [1, 2]
    proba = tiny_cnn.predict_proba(x[:5])
    assert proba.shape == (5, 10) and np.allclose(proba.sum(1), 1.0)


def test_state_round_trip_gives_identical_outputs(tiny_cnn: CNNClassifier, tmp_path: Path,
                                                  small_train: tuple[np.ndarray, np.ndarray]) -> None:
    from digitlab.models.io import load_model, save_model

    x = small_train[0][:200]
    arrays, meta = tiny_cnn.get_state()
    rebuilt = CNNClassifier.from_state(tiny_cnn.get_params(), arrays, meta)
    assert np.array_equal(rebuilt.decision_function(x), tiny_cnn.decision_function(x))
    loaded = load_model(save_model(tiny_cnn, tmp_path / "m", ModelCard(model="cnn", notes={"note": "tiny"}))).estimator
    assert np.array_equal(loaded.decision_function(x), tiny_cnn.decision_function(x))


def test_deeper_network_round_trips_with_its_depth(tiny_data: tuple[np.ndarray, np.ndarray],
                                                    tmp_path: Path) -> None:
    from digitlab.models.io import load_model, save_model

    x, y = tiny_data
    deep = CNNClassifier(**TINY, epochs=1, depth=2).fit(x[:200], y[:200])
    assert sum(isinstance(m, torch.nn.Conv2d) for m in deep.net_.modules()) == 5   # 1 + 2 + 2
    loaded = load_model(save_model(deep, tmp_path / "deep")).estimator
    assert loaded.net_.state_dict().keys() == deep.net_.state_dict().keys()
    assert np.array_equal(loaded.decision_function(x[:50]), deep.decision_function(x[:50]))


def test_depth_out_of_range_is_a_user_error(tiny_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = tiny_data
    with pytest.raises(UserError, match=r"depth must be an integer in 1\.\.4, got 0"):
        CNNClassifier(**TINY, depth=0).fit(x, y)


class _Interrupt(Exception):
    pass


def test_resume_continues_from_saved_epoch_with_same_weights(tiny_data: tuple[np.ndarray, np.ndarray],
                                                             tmp_path: Path) -> None:
    x, y = tiny_data[0][:300], tiny_data[1][:300]
    params = {**TINY, "epochs": 3, "augment": "elastic"}    # augmentation exercises the restored RNG
    whole = CNNClassifier(**params).fit(x, y)

    def stop_after_first(key: str, completed: int, total: int, **info: object) -> None:
        if key == "epoch" and completed == 1:
            raise _Interrupt

    ckpt = tmp_path / "ckpt"
    with pytest.raises(_Interrupt):
        CNNClassifier(**params).fit(x, y, checkpoint_dir=ckpt, progress=stop_after_first)
    assert (ckpt / "checkpoint.json").is_file()
    epochs_run: list[int] = []
    resumed = CNNClassifier(**params).fit(
        x, y, checkpoint_dir=ckpt, resume=True,
        progress=lambda key, completed, total, **info: epochs_run.append(completed) if key == "epoch" else None)
    assert epochs_run == [2, 3]
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3]
    a, b = whole.net_.state_dict(), resumed.net_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_checkpoint_of_other_parameters(tiny_data: tuple[np.ndarray, np.ndarray],
                                                         tmp_path: Path) -> None:
    x, y = tiny_data[0][:128], tiny_data[1][:128]
    CNNClassifier(**{**TINY, "epochs": 1}).fit(x, y, checkpoint_dir=tmp_path)
    with pytest.raises(UserError, match="other data or parameters"):
        CNNClassifier(**{**TINY, "epochs": 1, "width": 4}).fit(x, y, checkpoint_dir=tmp_path, resume=True)


def test_bad_recipe_is_a_user_error(tiny_data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(UserError, match="recipe must be one of"):
        CNNClassifier(recipe="huge").fit(*tiny_data)


def test_inference_leaves_the_input_unchanged(tiny_cnn: CNNClassifier,
                                              small_train: tuple[np.ndarray, np.ndarray]) -> None:
    x = small_train[0][:4].reshape(4, 784).astype(np.float32)    # float32: no conversion copy upstream
    before = x.copy()
    first = tiny_cnn.decision_function(x)
    tiny_cnn.integrated_gradients(x, 1)
    assert np.array_equal(x, before)
    assert np.array_equal(tiny_cnn.decision_function(x), first)


def test_integrated_gradients_sum_to_logit_difference(tiny_cnn: CNNClassifier,
                                                      small_train: tuple[np.ndarray, np.ndarray]) -> None:
    x = small_train[0][:8].reshape(8, 784).astype(np.float32)
    ig = tiny_cnn.integrated_gradients(x, 3, steps=64)           # (8, 784)
    gap = tiny_cnn.decision_function(x)[:, 3] - tiny_cnn.decision_function(np.zeros((1, 784)))[0, 3]
    assert ig.shape == (8, 784)
    assert np.allclose(ig.sum(1), gap, rtol=0.05, atol=0.05 * np.abs(gap).mean())


def test_fit_with_int8_makes_the_graph_predictions_use(int8_cnn: CNNClassifier) -> None:
    assert isinstance(int8_cnn.int8_graph_, bytes) and int8_cnn.int8_graph_[:1] == b"\x08"  # ONNX protobuf (ir_version)
    assert int8_cnn._int8_graph() is not None
    assert int8_cnn.set_params(int8=False)._int8_graph() is None
    int8_cnn.set_params(int8=True)


def test_int8_predictions_agree_with_the_float_network(int8_cnn: CNNClassifier,
                                                       small_train: tuple[np.ndarray, np.ndarray]) -> None:
    x = small_train[0][600:1600]
    int8 = int8_cnn.decision_function(x)                          # (1000, 10)
    float32 = int8_cnn.set_params(int8=False).decision_function(x)
    int8_cnn.set_params(int8=True)
    assert not np.array_equal(int8, float32)                      # the graph, not PyTorch, answered
    assert (int8.argmax(1) == float32.argmax(1)).mean() >= 0.97
    assert np.abs(int8 - float32).mean() <= 0.05 * float32.std()   # 1.4 % measured


def test_int8_gives_an_image_the_same_scores_alone_or_batched(int8_cnn: CNNClassifier,
                                                              small_train: tuple[np.ndarray, np.ndarray]) -> None:
    x = small_train[0][:100]
    batched = int8_cnn.decision_function(x)                       # 100 > 64: two threads
    alone = np.concatenate([int8_cnn.decision_function(x[i:i + 1]) for i in range(len(x))])
    assert np.array_equal(batched, alone)


def test_int8_graph_round_trips_through_the_model_folder(int8_cnn: CNNClassifier, tmp_path: Path,
                                                         small_train: tuple[np.ndarray, np.ndarray]) -> None:
    from safetensors.numpy import load_file

    from digitlab.models.io import load_model, save_model

    folder = save_model(int8_cnn, tmp_path / "m")
    assert "int8.onnx" in load_file(str(folder / "weights.safetensors"))
    loaded = load_model(folder).estimator
    assert loaded.int8_graph_ == int8_cnn.int8_graph_
    x = small_train[0][:50]
    assert np.array_equal(loaded.decision_function(x), int8_cnn.decision_function(x))


def test_a_corrupt_int8_graph_is_refused_when_the_model_loads(int8_cnn: CNNClassifier, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    from digitlab.errors import ModelError
    from digitlab.models.io import load_model, save_model

    folder = save_model(int8_cnn, tmp_path / "m")
    arrays = load_file(str(folder / "weights.safetensors"))
    arrays["int8.onnx"] = arrays["int8.onnx"][: len(arrays["int8.onnx"]) // 2]    # truncated
    save_file(arrays, str(folder / "weights.safetensors"))
    with pytest.raises(ModelError, match="int8 graph cannot be loaded"):
        load_model(folder)


def test_refit_without_int8_drops_the_previous_graph(tiny_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = tiny_data
    est = CNNClassifier(**TINY, epochs=1).fit(x[:100], y[:100])
    est.int8_graph_ = b"graph of an older network"
    est.fit(x[:100], y[:100])
    assert not hasattr(est, "int8_graph_")


def test_a_model_without_a_graph_predicts_with_pytorch(tiny_cnn: CNNClassifier,
                                                       small_train: tuple[np.ndarray, np.ndarray]) -> None:
    import copy

    older = copy.copy(tiny_cnn).set_params(int8=True)         # saved before int8 existed: no int8_graph_
    assert not hasattr(older, "int8_graph_") and older._int8_graph() is None
    x = small_train[0][:20]
    assert np.array_equal(older.decision_function(x), tiny_cnn.decision_function(x))


def test_a_failed_int8_export_warns_and_keeps_the_trained_network(tiny_data: tuple[np.ndarray, np.ndarray],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import digitlab.models.cnn.estimator as cnn_module

    def broken(*args: object) -> bytes:
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr(cnn_module, "export_int8", broken)
    x, y = tiny_data
    with pytest.warns(RuntimeWarning, match="exporter unavailable"):
        est = CNNClassifier(**{**TINY, "int8": True}, epochs=1).fit(x[:100], y[:100])
    assert est._int8_graph() is None and est.predict(x[:5]).shape == (5,)


def test_quantize_needs_a_fitted_network() -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CNNClassifier(**TINY).quantize(np.zeros((4, 784)))


def test_quantize_gives_a_loaded_model_a_graph_and_save_keeps_the_card(
        tiny_cnn: CNNClassifier, tmp_path: Path, small_train: tuple[np.ndarray, np.ndarray]) -> None:
    """What ``digitlab models requantize`` is made of: load, quantize on training images, save with the same card."""
    import copy

    from digitlab.models.io import load_model, save_model

    x, y = small_train
    folder = save_model(copy.deepcopy(tiny_cnn), tmp_path / "m", ModelCard(model="cnn", command="train it"))
    loaded = load_model(folder)
    assert loaded.estimator._int8_graph() is None
    est = loaded.estimator.set_params(int8=True).quantize(x[:600])
    save_model(est, folder, loaded.card)
    again = load_model(folder)
    assert again.card.command == "train it"
    assert again.estimator.int8 and again.estimator.int8_graph_ == est.int8_graph_
    int8_accuracy = (again.estimator.predict(x[600:1600]) == y[600:1600]).mean()
    float_accuracy = (tiny_cnn.predict(x[600:1600]) == y[600:1600]).mean()
    assert abs(int8_accuracy - float_accuracy) <= 0.02


def test_bundled_model_reaches_99_5_percent(mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    from digitlab.models.io import load_model, model_path

    loaded = load_model(model_path("default", Path("/nonexistent-models-dir")))
    assert isinstance(loaded.estimator, CNNClassifier)
    assert loaded.estimator._int8_graph() is not None          # served in int8
    x, y = mnist_test
    accuracy = (loaded.estimator.predict(x) == y).mean()
    assert accuracy >= 0.995, accuracy
    assert accuracy == loaded.card.test_accuracy


def _synthetic(n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 784)).astype(np.uint8), np.arange(n) % 10


def _checkpointed(folder: Path) -> tuple[np.ndarray, np.ndarray, dict]:  # type: ignore[type-arg]
    """A 2-epoch run's checkpoint in ``folder``; returns the data and the checkpoint's JSON."""
    import json

    x, y = _synthetic()
    CNNClassifier(**{**TINY, "epochs": 2, "width": 4}).fit(x, y, checkpoint_dir=folder)
    return x, y, json.loads((folder / "checkpoint.json").read_text())


def _resume(folder: Path, x: np.ndarray, y: np.ndarray) -> CNNClassifier:
    return CNNClassifier(**{**TINY, "epochs": 2, "width": 4}).fit(x, y, checkpoint_dir=folder, resume=True)


@pytest.mark.parametrize("weights", ["../outside.safetensors", "/etc/passwd", "sub/epoch-0002.safetensors", 3])
def test_a_checkpoint_naming_weights_outside_its_folder_is_refused(tmp_path: Path, weights: object) -> None:
    import json

    folder = tmp_path / "ckpt"
    x, y, doc = _checkpointed(folder)
    (tmp_path / "outside.safetensors").write_bytes((folder / doc["weights"]).read_bytes())
    doc["weights"] = weights
    (folder / "checkpoint.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match="weights"):
        _resume(folder, x, y)


def test_a_checkpoint_whose_weights_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    x, y, doc = _checkpointed(folder)
    outside = tmp_path / "elsewhere.safetensors"
    (folder / doc["weights"]).rename(outside)
    (folder / doc["weights"]).symlink_to(outside)
    with pytest.raises(UserError, match="outside the checkpoint folder"):
        _resume(folder, x, y)


@pytest.mark.parametrize("epoch", [3, 99, -1, "2", True])
def test_a_checkpoint_epoch_the_run_cannot_reach_is_refused(tmp_path: Path, epoch: object) -> None:
    import json

    folder = tmp_path / "ckpt"
    x, y, doc = _checkpointed(folder)
    doc["epoch"] = epoch
    (folder / "checkpoint.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"epoch must be an integer in 0\.\.2"):
        _resume(folder, x, y)


@pytest.mark.parametrize("text", ["[1, 2]", "not json", "[" * 100_000])
def test_an_unreadable_checkpoint_is_refused(tmp_path: Path, text: str) -> None:
    folder = tmp_path / "ckpt"
    x, y, _ = _checkpointed(folder)
    (folder / "checkpoint.json").write_text(text)
    with pytest.raises(UserError, match="start afresh"):
        _resume(folder, x, y)


def test_a_finished_checkpoint_resumes_to_the_same_network(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    x, y, _ = _checkpointed(folder)
    first = CNNClassifier(**{**TINY, "epochs": 2, "width": 4}).fit(x, y)
    resumed = _resume(folder, x, y)
    assert [h["epoch"] for h in resumed.history_] == [1, 2]
    assert np.array_equal(resumed.decision_function(x[:10]), first.decision_function(x[:10]))
