"""The Dirichlet-process mixture: sampler correctness, the estimator, saving, completion and the CLI."""

from __future__ import annotations

import json
import math
from itertools import product

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from digitlab.errors import UserError
from digitlab.models import make_model
from digitlab.models._dpmm_gibbs import GibbsChain
from digitlab.models.card import ModelCard
from digitlab.models.dpmm import DPMixtureClassifier, cluster_means, complete, half_mask


def _synthetic(n_per: int = 60, seed: int = 0, flip: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (0/255) drawn from 4 known Bernoulli clusters; returns X, true cluster, prototypes (4, 784)."""
    rng = np.random.default_rng(seed)
    protos = np.zeros((4, 28, 28), dtype=bool)
    protos[0, 2:12, 4:24] = True  # top, bottom, left and right bars
    protos[1, 16:26, 4:24] = True
    protos[2, 4:24, 2:12] = True
    protos[3, 4:24, 16:26] = True
    protos = protos.reshape(4, -1)
    truth = np.repeat(np.arange(4), n_per)
    on = np.where(protos[truth], 1 - flip, flip)
    X = (rng.random(on.shape) < on).astype(np.uint8) * 255
    return X, truth, protos


@pytest.fixture(scope="module")
def synthetic_fit() -> tuple[DPMixtureClassifier, np.ndarray, np.ndarray, np.ndarray]:
    X, truth, protos = _synthetic()
    y = np.where(truth < 2, 2, 3)  # clusters 0, 1 are "2s"; 2, 3 are "3s"
    est = DPMixtureClassifier(chains=2, iters=4, seed=1).fit(X, y)
    return est, X, truth, protos


def test_recovers_known_bernoulli_clusters(synthetic_fit) -> None:  # type: ignore[no-untyped-def]
    est, _, truth, _ = synthetic_fit
    for st in est.chains_:
        assert adjusted_rand_score(truth, st.assign) > 0.95


def _partitions(n: int) -> list[tuple[int, ...]]:
    """Every set partition of n items as a restricted growth string."""
    out = []
    for s in product(range(n), repeat=n):
        if s[0] == 0 and all(s[i] <= max(s[:i]) + 1 for i in range(1, n)):
            out.append(s)
    return out


def _canonical(z: np.ndarray) -> tuple[int, ...]:
    seen: dict[int, int] = {}
    return tuple(seen.setdefault(int(v), len(seen)) for v in z)


def _log_posterior(part: tuple[int, ...], X: np.ndarray, alpha: float, a: np.ndarray, b: np.ndarray) -> float:
    z = np.asarray(part)
    K = z.max() + 1
    lp = K * math.log(alpha) + math.lgamma(alpha) - math.lgamma(alpha + len(z))
    for k in range(K):
        rows = X[z == k]
        n = len(rows)
        lp += math.lgamma(n)
        n1 = rows.sum(axis=0)
        for d in range(X.shape[1]):
            lp += (math.lgamma(a[d] + n1[d]) + math.lgamma(b[d] + n - n1[d]) - math.lgamma(a[d] + b[d] + n)
                   + math.lgamma(a[d] + b[d]) - math.lgamma(a[d]) - math.lgamma(b[d]))
    return lp


def test_gibbs_matches_exact_posterior_over_partitions() -> None:
    X = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 1]], dtype=np.uint8)
    alpha, a, b = 0.8, np.array([0.5, 1.0, 2.0]), np.array([1.5, 1.0, 0.7])
    parts = _partitions(4)
    assert len(parts) == 15
    logp = np.array([_log_posterior(p, X, alpha, a, b) for p in parts])
    exact = np.exp(logp - logp.max())
    exact /= exact.sum()
    chain = GibbsChain(X, np.random.default_rng(3), alpha, a, b, capacity=2)
    chain.sweep()  # sequential initialisation, then the stationary phase
    counts = dict.fromkeys(parts, 0)
    sweeps = 20000
    for _ in range(sweeps):
        chain.sweep()
        counts[_canonical(chain.z)] += 1
    empirical = np.array([counts[p] for p in parts]) / sweeps
    assert 0.5 * np.abs(empirical - exact).sum() < 0.03


def test_same_seed_same_result_whatever_the_threads() -> None:
    X, truth, _ = _synthetic(n_per=25, seed=2)
    one = DPMixtureClassifier(chains=3, iters=2, seed=7, n_jobs=1).fit(X, np.where(truth < 2, 2, 3))
    two = DPMixtureClassifier(chains=3, iters=2, seed=7, n_jobs=2).fit(X, np.where(truth < 2, 2, 3))
    for s1, s2 in zip(one.chains_, two.chains_, strict=True):
        np.testing.assert_array_equal(s1.assign, s2.assign)
        np.testing.assert_array_equal(s1.a, s2.a)
        assert s1.loglik == s2.loglik and s1.alpha == s2.alpha


def test_progress_reports_every_chain_and_sweep() -> None:
    X, _, _ = _synthetic(n_per=10, seed=3)
    calls: list[tuple[str, int, int, dict]] = []
    DPMixtureClassifier(chains=2, iters=3, seed=0).fit(X, progress=lambda k, s, n, **i: calls.append((k, s, n, i)))
    for c in ("chain 0", "chain 1"):
        done = [s for k, s, _, i in calls if k == c and not math.isnan(i["loglik"])]
        assert done == [0, 1, 2, 3]
    assert all(n == 3 and i["clusters"] >= 0 for _, _, n, i in calls)


def test_visible_pixels_are_returned_and_hidden_half_is_predicted(synthetic_fit):  # type: ignore[no-untyped-def]
    est, _, _, protos = synthetic_fit
    mask = half_mask("left")
    image = protos[0].astype(np.float64) * 255  # the top bar: its left half identifies it
    out = complete(est, image, mask)
    np.testing.assert_array_equal(out[mask], protos[0][mask].astype(float))
    hidden = ~mask
    # hidden pixels: the bar continues on the right, the background stays empty
    assert out[hidden & protos[0]].min() > 0.75
    assert out[hidden & ~protos[0]].max() < 0.25


def test_complete_rejects_a_bad_mask(synthetic_fit) -> None:  # type: ignore[no-untyped-def]
    est = synthetic_fit[0]
    with pytest.raises(UserError, match="784 booleans"):
        complete(est, np.zeros(784), np.ones(784, dtype=np.int64))


def test_cluster_means_largest_first(synthetic_fit) -> None:  # type: ignore[no-untyped-def]
    means, sizes = cluster_means(synthetic_fit[0])
    assert means.shape == (len(sizes), 784) and np.all(np.diff(sizes) <= 0) and sizes.sum() == 240
    assert ((means > 0) & (means < 1)).all()


def test_save_load_round_trip(synthetic_fit, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from digitlab.models.io import load_model, save_model

    est, X, _, _ = synthetic_fit
    save_model(est, tmp_path / "m", ModelCard(model="dpmm", notes={"note": "test"}))
    assert not list(tmp_path.rglob("*.pkl"))
    back = load_model(tmp_path / "m").estimator
    np.testing.assert_array_equal(back.predict_proba(X[::7]), est.predict_proba(X[::7]))
    for s1, s2 in zip(est.chains_, back.chains_, strict=True):
        np.testing.assert_array_equal(s1.assign, s2.assign)
        np.testing.assert_array_equal(s1.ones, s2.ones)
        assert s1.loglik == s2.loglik
    assert back.get_params() == est.get_params()


def test_bad_parameters_are_user_errors() -> None:
    X, _, _ = _synthetic(n_per=3)
    with pytest.raises(UserError, match="threshold"):
        DPMixtureClassifier(threshold=0).fit(X)
    with pytest.raises(UserError, match="digits"):
        DPMixtureClassifier(digits=(2, 12)).fit(X, np.full(len(X), 2))
    with pytest.raises(UserError, match="unknown parameter"):
        make_model("dpmm", sweeps=3)


def test_classifies_test_twos_and_threes(small_train, mnist_test) -> None:  # type: ignore[no-untyped-def]
    x, y = small_train
    est = make_model("dpmm", chains=2, iters=3, seed=0).fit(x, y)
    assert list(est.classes_) == [2, 3] and est.n_train_ == 600
    xt, yt = mnist_test
    keep = np.flatnonzero(np.isin(yt, [2, 3]))[:600]
    proba = est.predict_proba(xt[keep])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (est.predict(xt[keep]) == yt[keep]).mean() > 0.93


def test_cli_fit_clusters_complete(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    res = cli("dpmm", "fit", "--chains", "2", "--iters", "1", "--seed", "0", "--name", "dp", "--format", "json")
    assert res.exit_code == 0, res.output
    card = json.loads(res.stdout)
    assert card["n_train"] == 12089 - round(0.05 * 12089)  # the 2s and 3s, less the calibration hold-out
    assert card["test_accuracy"] > 0.9 and len(card["clusters_per_chain"]) == 2
    assert len(card["chains"][0]["loglik"]) == 2

    res = cli("dpmm", "clusters", "dp", "--out", tmp_path / "c.png", "--scale-by-size", "--format", "json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["n_clusters"] == card["clusters_per_chain"][0] == len(info["sizes"])
    assert Image.open(info["out"]).format == "PNG"

    res = cli("dpmm", "complete", "dp", "--keep", "bottom", "--n", "4", "--seed", "1", "--out", tmp_path / "k.png",
              "--format", "json")
    assert res.exit_code == 0, res.output
    done = json.loads(res.stdout)
    assert [im["label"] for im in done["images"]] == [2, 2, 3, 3]
    assert all(len(im["probabilities"]) == 784 for im in done["images"])
    assert done["mean_hidden_pixel_accuracy"] > 0.75
    img = Image.open(done["out"])
    assert img.format == "PNG" and img.size[0] > img.size[1]


def test_cli_complete_rejects_unknown_half(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    res = cli("dpmm", "complete", "nosuch", "--keep", "middle", "--out", tmp_path / "k.png")
    assert res.exit_code == 2 and "keep must be one of" in res.stderr


def test_alpha_update_samples_its_posterior() -> None:
    from digitlab.models._dpmm_gibbs import _update_alpha

    K, N = 5, 50
    grid = np.linspace(1e-4, 30, 300_001)
    # Gamma(1, 1) prior times the CRP likelihood of a partition with K blocks of N points
    logpost = -grid + K * np.log(grid) + _lgamma(grid) - _lgamma(grid + N)
    w = np.exp(logpost - logpost.max())
    exact_mean = (grid * w).sum() / w.sum()
    rng = np.random.default_rng(0)
    alpha, draws = 1.0, []
    for _ in range(20000):
        alpha = _update_alpha(rng, alpha, K, N, 1.0, 1.0)
        draws.append(alpha)
    assert abs(np.mean(draws) - exact_mean) < 0.03 * exact_mean


def _lgamma(x: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return gammaln(x)


def test_beta_hyperparameter_update_samples_its_posterior() -> None:
    from digitlab.models._dpmm_gibbs import HYPER_HI, HYPER_LO, _update_hypers

    n1 = np.array([[5], [0], [12]], dtype=np.int64)  # 3 clusters, 1 pixel
    nk = np.array([10, 4, 20], dtype=np.int64)
    ids = np.arange(3, dtype=np.int64)
    u = np.linspace(math.log(HYPER_LO), math.log(HYPER_HI), 401)
    la, lb = np.meshgrid(u, u, indexing="ij")
    a, b = np.exp(la), np.exp(lb)
    logpost = sum(_lgamma(a + c) + _lgamma(b + m - c) - _lgamma(a + b + m) + _lgamma(a + b) - _lgamma(a) - _lgamma(b)
                  for c, m in zip(n1[:, 0], nk, strict=True))
    w = np.exp(logpost - logpost.max())
    w /= w.sum()
    exact = ((la * w).sum(), (lb * w).sum())
    rng = np.random.default_rng(0)
    av, bv, draws = np.ones(1), np.ones(1), []
    for _ in range(20000):
        _update_hypers(rng, n1, nk, ids, 3, av, bv)
        draws.append((math.log(av[0]), math.log(bv[0])))
    got = np.mean(draws, axis=0)
    assert abs(got[0] - exact[0]) < 0.1 and abs(got[1] - exact[1]) < 0.1
