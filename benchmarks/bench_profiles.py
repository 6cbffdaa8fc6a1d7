"""Learning from corrections (issue 15): personal profiles and fine-tuning, on writers the model never saw.

Every target of issue 15, in one run:

1. **Profiles, by writer.** The UNIPEN pen digits (30 writers, ~250 digits each; the bundled model
   trained on writers 1-24, ``card.notes.drawings``) are drawn on the page's canvas and read as the
   server reads them. For each writer, ``k`` of their drawings per digit (2 or 5, chosen at random,
   ``--repeats`` times) become a profile's corrections and the writer's *other* digits are read with
   and without the profile (``digitlab.profiles.adapt``, the embedding the server uses). The
   adaptation's constants (``CNN_ADAPTATION``, ``PIXEL_ADAPTATION``) are judged on writers 1-12
   (the grid is printed with ``--tune``); the figures are those of writers 25-30, the six the bundled
   model never trained on, and of 28-30 alone (``digitlab.pen.KEPT_OUT_WRITERS``). Models: the bundled
   CNN (its penultimate features) and a logistic regression fitted on 10 000 MNIST images (blurred
   pixels: the path of every family but the CNN).
2. **Latency.** A server (``create_app``, in this process) holding a profile of 500 corrections:
   ``/v1/predict`` with and without the profile, interleaved, the same drawing.
3. **Nothing changes without a profile.** The same requests to that server and to a fresh one that never
   saw a correction: answers compared field by field (``elapsed_ms`` aside).
4. **Fine-tuning.** ``train cnn --table drawings --init default`` (``digitlab.workflows.train``) on
   5 corrections per digit of writers 13-27 plus MNIST train: MNIST test accuracy against the bundled
   model's, and the error on those writers' other digits and on writers 1-12 and 28-30 (never in the
   drawings; 28-30 never in any training), before and after.

    nice -n 19 env OMP_NUM_THREADS=1 PYTHONPATH=src DIGITLAB_DATA=/work/shared/data/mnist \\
        python benchmarks/bench_profiles.py            # --fast: 3 writers, 1 repeat, no fine-tune, not written
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import table, write_section
from digitlab.data import read_unipen
from digitlab.pen import CALIBRATION_WRITERS, KEPT_OUT_WRITERS, render
from digitlab.profiles import Adaptation, Profile, adapt, embedder_for

PEN = Path(os.environ.get("DIGITLAB_PENDIGITS", "/work/shared/data/pendigits/pendigits-orig.tra.gz"))
TUNE_WRITERS = tuple(range(1, 13))
#: The bundled model trains on the pen digits of writers 1-24: profiles are measured on the six it never
#: trained on (25-27 only fitted its temperature, 28-30 are kept out altogether).
REPORT_WRITERS = (*CALIBRATION_WRITERS, *KEPT_OUT_WRITERS)
FINETUNE_WRITERS = tuple(range(13, 28))


def _models(mnist_dir: Path) -> dict[str, object]:
    from digitlab.data import load_mnist
    from digitlab.models import make_model
    from digitlab.models.io import bundled_dir, load_model

    x, y = load_mnist(mnist_dir, "train")
    rng = np.random.default_rng(0)
    keep = rng.choice(len(y), 10_000, replace=False)
    logreg = make_model("logreg").fit(x[keep].reshape(-1, 784), y[keep])
    return {"default (CNN)": load_model(bundled_dir(), name="default").estimator, "logreg (10k MNIST)": logreg}


def _errors(proba: np.ndarray, emb: np.ndarray, labels: np.ndarray, writers: np.ndarray, writer: int, k: int,
            repeats: int, adaptation: Adaptation, seed: int) -> tuple[float, float]:
    """Mean error (%) of ``writer``'s other digits without and with a profile of ``k`` drawings per digit."""
    mine = np.flatnonzero(writers == writer)
    rng = np.random.default_rng(seed * 1000 + writer)
    base, adapted = [], []
    for _ in range(repeats):
        chosen = np.concatenate([rng.choice(mine[labels[mine] == d], k, replace=False) for d in range(10)])
        rest = np.setdiff1d(mine, chosen)
        p = adapt(proba[rest], emb[rest], emb[chosen], labels[chosen], adaptation)
        base.append(100 * np.mean(proba[rest].argmax(1) != labels[rest]))
        adapted.append(100 * np.mean(p.argmax(1) != labels[rest]))
    return float(np.mean(base)), float(np.mean(adapted))


def profile_figures(models: dict[str, object], x: np.ndarray, labels: np.ndarray, writers: np.ndarray,
                    report: tuple[int, ...], repeats: int, tune: bool) -> tuple[str, list[str]]:
    rows, per_writer, verdicts = [], [], []
    tune_rows = []
    for name, est in models.items():
        proba = np.asarray(est.predict_proba(x.reshape(-1, 784)), dtype=np.float64)      # (n, 10)
        embedder = embedder_for(est)                                                     # type: ignore[arg-type]
        emb = embedder(x.reshape(-1, 784).astype(np.float32))                            # (n, d)
        # the precomputed path is Profile.adapt's own: checked on one writer's drawings
        idx = np.flatnonzero(writers == report[0])[:40]
        prof = Profile("check")
        for i in idx[:20]:
            prof = prof.with_drawing(int(i), int(labels[i]), x[i].reshape(-1))
        assert np.allclose(prof.adapt(est, x[idx[20:]].reshape(-1, 784).astype(np.float32), proba[idx[20:]]),  # type: ignore[arg-type]
                           adapt(proba[idx[20:]], emb[idx[20:]], emb[idx[:20]], labels[idx[:20]],
                                 embedder.adaptation))
        if tune:
            for tau in (0.03, 0.05, 0.1, 0.2):
                for m in (0.03, 0.1, 0.3, 1.0):
                    a = Adaptation(tau=tau, model_weight=m)
                    e2 = [_errors(proba, emb, labels, writers, w, 2, repeats, a, 1) for w in TUNE_WRITERS]
                    tune_rows.append([name, tau, m, round(float(np.mean([b for b, _ in e2])), 2),
                                      round(float(np.mean([v for _, v in e2])), 2)])
        for group, ws in ((f"writers {report[0]}-{report[-1]}", report),
                          (f"kept-out writers {', '.join(map(str, KEPT_OUT_WRITERS))}",
                           tuple(w for w in KEPT_OUT_WRITERS if w in report))):
            if not ws:
                continue
            res = {k: [_errors(proba, emb, labels, writers, w, k, repeats, embedder.adaptation, 0) for w in ws]
                   for k in (2, 5)}
            base = float(np.mean([b for b, _ in res[2]]))
            e2 = float(np.mean([v for _, v in res[2]]))
            e5 = float(np.mean([v for _, v in res[5]]))
            worst = max(v - b for b, v in res[2])
            rows.append([name, group, len(ws), f"{base:.2f}", f"{e2:.2f}", f"{base / max(e2, 1e-9):.1f}x",
                         f"{worst:+.2f}", f"{e5:.2f}", f"{base / max(e5, 1e-9):.1f}x"])
            if group.startswith("writers"):
                verdicts.append(f"{name}: 2 per digit {base / max(e2, 1e-9):.1f}x lower (target >= 2x) "
                                f"{'MET' if base >= 2 * e2 else 'NOT MET'}; worst writer {worst:+.2f} points "
                                f"(target <= +0.5) {'MET' if worst <= 0.5 else 'NOT MET'}; 5 per digit "
                                f"{base / max(e5, 1e-9):.1f}x lower (target >= 3x) "
                                f"{'MET' if base >= 3 * e5 else 'NOT MET'}")
                for w, (b2, v2), (_, v5) in zip(ws, res[2], res[5], strict=True):
                    per_writer.append([name, w, f"{b2:.1f}", f"{v2:.1f}", f"{v5:.1f}"])
    body = table(["model", "writers", "n", "error, no profile (%)", "2 per digit (%)", "lower by",
                  "worst writer (points)", "5 per digit (%)", "lower by"], rows)
    body += "\n\nPer writer (error % on their other digits: no profile, 2 per digit, 5 per digit):\n\n"
    body += table(["model", "writer", "none", "2", "5"], per_writer)
    if tune_rows:
        body += ("\n\nThe adaptation's constants on writers 1-12 (2 per digit; the figures above are of other "
                 "writers), error %:\n\n" + table(["model", "tau", "m", "no profile", "with profile"], tune_rows))
    return body, verdicts


def latency_and_identity(mnist_dir: Path, x: np.ndarray, labels: np.ndarray, pairs: int) -> tuple[str, list[str]]:
    from fastapi.testclient import TestClient

    from digitlab.serve import create_app, serve_settings

    with tempfile.TemporaryDirectory() as tmp:
        base = serve_settings(data_dir=mnist_dir, home=Path(tmp) / "home", default_model="default")
        used = replace(base, store_path=Path(tmp) / "used.duckdb")
        fresh = replace(base, store_path=Path(tmp) / "fresh.duckdb")
        with TestClient(create_app(used)) as app, TestClient(create_app(fresh)) as never:
            t0 = time.perf_counter()
            for i in range(500):
                r = app.post("/v1/corrections", json={"pixels": x[i % len(x)].reshape(-1).tolist(),
                                                      "label": int(labels[i % len(x)]), "profile": "p500"})
                assert r.status_code == 201, r.text
            store_ms = (time.perf_counter() - t0) * 1000 / 500
            assert app.get("/v1/profiles/p500").json()["count"] == 500
            probe = x[-1].reshape(-1).tolist()
            body = {"pixels": probe, "explain": False}
            for _ in range(20):  # warm up both paths (the profile's embeddings are made here, once)
                app.post("/v1/predict", json=body), app.post("/v1/predict", json={**body, "profile": "p500"})
            plain, profiled, plain_srv, prof_srv = [], [], [], []
            for i in range(pairs):
                order = [False, True] if i % 2 == 0 else [True, False]
                for with_profile in order:
                    t = time.perf_counter()
                    r = app.post("/v1/predict", json={**body, "profile": "p500"} if with_profile else body)
                    ms = (time.perf_counter() - t) * 1000
                    (profiled if with_profile else plain).append(ms)
                    (prof_srv if with_profile else plain_srv).append(r.json()["elapsed_ms"])
            # answers without a profile: identical to a server that never saw a correction
            same = total = 0
            for i in range(0, len(x), max(1, len(x) // 200)):
                for extra in ({}, {"explain": True}, {"models": ["default"]}):
                    req = {"pixels": x[i].reshape(-1).tolist(), **extra}
                    a, b = app.post("/v1/predict", json=req).json(), never.post("/v1/predict", json=req).json()
                    for d in (a, b):
                        d.pop("elapsed_ms", None)
                        for m in d.get("by_model", []):
                            m.pop("elapsed_ms", None)
                    same += a == b
                    total += 1
    med = statistics.median
    extra_ms = med(profiled) - med(plain)
    rows = [["without a profile", f"{med(plain):.2f}", f"{np.percentile(plain, 90):.2f}", f"{med(plain_srv):.2f}"],
            ["profile of 500 corrections", f"{med(profiled):.2f}", f"{np.percentile(profiled, 90):.2f}",
             f"{med(prof_srv):.2f}"]]
    body = (f"{pairs} pairs of `/v1/predict` requests (the bundled CNN, pixels, no explanation), interleaved; "
            f"milliseconds per request through the app (client side) and as the server reports it "
            f"(`elapsed_ms`):\n\n" + table(["request", "median", "p90", "server median"], rows)
            + f"\n\nStoring a correction: {store_ms:.1f} ms each on average (500, through the API, "
            f"written durably).\n\nWithout a profile, {same} of {total} answers (pixels, with and without "
            "explanation, with `models`) are identical to those of a server that never saw a correction.")
    verdicts = [f"profile of 500: {extra_ms:+.2f} ms median (target <= 2 ms) {'MET' if extra_ms <= 2 else 'NOT MET'}",
                f"no profile: {same}/{total} identical (target all) {'MET' if same == total else 'NOT MET'}"]
    return body, verdicts


def finetune_figures(mnist_dir: Path, x: np.ndarray, labels: np.ndarray, writers: np.ndarray,
                     epochs: int | None) -> tuple[str, list[str]]:
    from digitlab.corrections import Corrections
    from digitlab.data import load_mnist
    from digitlab.evaluate import evaluate
    from digitlab.models.io import bundled_dir, load_model
    from digitlab.settings import get_settings
    from digitlab.store import Store
    from digitlab.workflows import TrainSpec, train

    rng = np.random.default_rng(0)
    chosen = np.concatenate([rng.choice(np.flatnonzero((writers == w) & (labels == d)), 5, replace=False)
                             for w in FINETUNE_WRITERS for d in range(10)])
    others = np.setdiff1d(np.flatnonzero(np.isin(writers, FINETUNE_WRITERS)), chosen)
    unseen = np.flatnonzero(~np.isin(writers, FINETUNE_WRITERS))
    base = load_model(bundled_dir(), name="default").estimator
    tx, ty = load_mnist(mnist_dir, "test")
    with tempfile.TemporaryDirectory() as tmp:
        settings = get_settings(data_dir=mnist_dir, home=Path(tmp))
        c = Corrections(Store(settings.store_path))
        for i in chosen:
            c.add(pixels=x[i], label=int(labels[i]), profile=f"w{writers[i]}", predicted=None, model="default")
        params: dict[str, object] = {"n_threads": 1}
        if epochs is not None:
            params["epochs"] = epochs
        result = train(TrainSpec(model="cnn", dataset="drawings", init="default", seed=0, params=params,
                                 record=False, save=False), settings=settings)
    tuned = result.estimator
    base_acc = evaluate(base, tx, ty, np.arange(len(ty))).metrics["accuracy"]
    tuned_acc = result.evaluation.metrics["accuracy"]

    def err(est: object, rows: np.ndarray) -> float:
        return float(100 * np.mean(est.predict(x[rows].reshape(-1, 784)) != labels[rows]))  # type: ignore[attr-defined]

    rows = [["MNIST test accuracy (%)", f"{100 * base_acc:.2f}", f"{100 * tuned_acc:.2f}"],
            [f"error on writers {FINETUNE_WRITERS[0]}-{FINETUNE_WRITERS[-1]}'s other digits (%)",
             f"{err(base, others):.2f}", f"{err(tuned, others):.2f}"],
            ["error on writers 1-12 and 28-30, never in the drawings (%)", f"{err(base, unseen):.2f}",
             f"{err(tuned, unseen):.2f}"],
            [f"of which kept-out writers {', '.join(map(str, KEPT_OUT_WRITERS))} (%)",
             f"{err(base, np.flatnonzero(np.isin(writers, KEPT_OUT_WRITERS))):.2f}",
             f"{err(tuned, np.flatnonzero(np.isin(writers, KEPT_OUT_WRITERS))):.2f}"]]
    drop = 100 * (base_acc - tuned_acc)
    body = (f"`train cnn --table drawings --init default` (recipe `finetune`, {result.card.params.get('epochs')} "
            f"epochs, 1 thread): {len(chosen)} corrections (5 per digit of each of writers "
            f"{FINETUNE_WRITERS[0]}-{FINETUNE_WRITERS[-1]}) plus MNIST train, {result.train_seconds:.0f} s.\n\n"
            + table(["measure", "bundled model", "fine-tuned"], rows))
    return body, [f"fine-tune: MNIST test {-drop:+.2f} points (target within 0.1) "
                  f"{'MET' if abs(drop) <= 0.1 or drop < 0 else 'NOT MET'}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="Random profiles per writer and size.")
    ap.add_argument("--pairs", type=int, default=300, help="Request pairs of the latency A/B.")
    ap.add_argument("--tune", action="store_true", help="Also print the grid of constants on writers 1-12.")
    ap.add_argument("--epochs", type=int, default=None, help="Fine-tuning epochs (default: the recipe's).")
    ap.add_argument("--fast", action="store_true", help="A smoke run: 3 writers, 1 repeat, 30 pairs, no "
                                                        "fine-tune; BENCHMARKS.md is not written.")
    args = ap.parse_args()
    mnist_dir = Path(os.environ.get("DIGITLAB_DATA", "/work/shared/data/mnist"))
    pen = read_unipen(PEN)
    x = np.stack([render(s) for s in pen.strokes])                                     # (n, 28, 28) uint8
    labels, writers = np.asarray(pen.labels), np.asarray(pen.writers)
    report = KEPT_OUT_WRITERS if args.fast else REPORT_WRITERS
    repeats = 1 if args.fast else args.repeats
    models = _models(mnist_dir)
    sections, verdicts = [], []
    body, v = profile_figures(models, x, labels, writers, report, repeats, args.tune)
    sections.append(f"### Profiles: {repeats} random profiles per writer\n\n{body}")
    verdicts += v
    body, v = latency_and_identity(mnist_dir, x, labels, 30 if args.fast else args.pairs)
    sections.append(f"### A prediction with a profile\n\n{body}")
    verdicts += v
    if not args.fast:
        body, v = finetune_figures(mnist_dir, x, labels, writers, args.epochs)
        sections.append(f"### Fine-tuning on the corrections\n\n{body}")
        verdicts += v
    text = ("The machine may be shared with other jobs (1-minute load average at the end: "
            f"{os.getloadavg()[0]:.1f}); the latency pairs are "
            "interleaved so that both sides see the same load.\n\n**Targets:**\n\n"
            + "\n".join(f"- {v}" for v in verdicts) + "\n\n" + "\n\n".join(sections))
    print(text)
    if not args.fast:
        write_section("profiles", "Learning from corrections: profiles and fine-tuning (issue 15)", text)


if __name__ == "__main__":
    main()
