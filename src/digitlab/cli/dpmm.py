"""``digitlab dpmm``: fit a Dirichlet-process mixture of digits, show its clusters, complete half-seen digits."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer

from digitlab.cli._common import (
    DataDirOption,
    FormatOption,
    HomeOption,
    OutputFormat,
    console,
    emit,
    progress,
    settings_from,
)
from digitlab.errors import UserError

if TYPE_CHECKING:
    from digitlab.models.dpmm import DPMixtureClassifier

__all__ = ["dpmm_app"]

dpmm_app = typer.Typer(help="Dirichlet-process mixture of digits: fit, show clusters, complete half-seen digits.",
                       no_args_is_help=True)


def _load(name: str, home: Path | None) -> DPMixtureClassifier:
    from digitlab.models.dpmm import DPMixtureClassifier
    from digitlab.models.io import load_model, model_path

    settings = settings_from(home=home)
    loaded = load_model(model_path(name, settings.models_dir), name=name)
    if not isinstance(loaded.estimator, DPMixtureClassifier):
        raise UserError(f"model {name!r} is a {loaded.card.model!r} model, not a 'dpmm' mixture")
    return loaded.estimator


@dpmm_app.command("fit")
def fit(
    digits: str = typer.Option("2,3", help="Digits to cluster, comma-separated."),
    chains: int = typer.Option(5, min=1, help="Independent Markov chains (run in parallel)."),
    iters: int = typer.Option(5, min=0, help="Gibbs sweeps per chain after the initial pass."),
    threshold: float = typer.Option(128.0, help="Pixels >= threshold (0-255) are on."),
    seed: int = typer.Option(0, help="Seed of the chains."),
    name: str = typer.Option("dpmm", help="Save the model under this name."),
    n_jobs: int | None = typer.Option(None, "--n-jobs", min=1, help="Chains run at once (default: all cores)."),
    engine: str = typer.Option("local", "--engine", help="local (threads of this process) or ray (one Ray task "
                                                         "per chain; $RAY_ADDRESS, else a local Ray)."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Fit the mixture to the MNIST training images of DIGITS, report test accuracy, save it as NAME."""
    from digitlab.models.dpmm import parse_digits
    from digitlab.workflows import TrainSpec, train

    keep = parse_digits(digits) or list(range(10))
    command = ["digitlab", "dpmm", "fit", "--digits", ",".join(map(str, keep)), "--chains", str(chains),
               "--iters", str(iters), "--threshold", f"{threshold:g}", "--seed", str(seed), "--name", name]
    if n_jobs is not None:
        command += ["--n-jobs", str(n_jobs)]
    if engine != "local":
        command += ["--engine", engine]
    spec = TrainSpec(model="dpmm", params={"digits": tuple(keep), "chains": chains, "iters": iters,
                                           "threshold": threshold, "seed": seed, "n_jobs": n_jobs,
                                           "engine": engine},
                     where=f"label IN ({', '.join(map(str, keep))})", seed=seed, name=name, record=False,
                     command=shlex.join(command))
    with progress(fmt is not OutputFormat.json) as bar:
        result = train(spec, settings=settings_from(data_dir=data_dir, home=home), progress=bar)
    notes = result.card.notes
    test = result.card.test_metrics
    accuracy = float(test["accuracy"])
    chains_info = list(notes["chains"])
    doc = {"name": name, "path": result.path, "train_seconds": result.card.train_seconds, "test_accuracy": accuracy,
           "n_train": notes["n_train"], "n_test": test["n"], "digits": notes["digits"], "seed": seed,
           "clusters_per_chain": notes["clusters_per_chain"], "chains": chains_info}
    emit(doc, fmt, title=f"dpmm {name!r}: {notes['n_train']} images, {result.train_seconds:.1f} s, "
                         f"test accuracy {accuracy:.4f} on {test['n']} test images",
         columns=["chain", "clusters", "alpha", "final loglik", "moves per sweep"],
         rows=[(c["chain"], c["clusters"], c["alpha"], c["loglik"][-1], " ".join(map(str, c["moves"])))
               for c in chains_info])


@dpmm_app.command("clusters")
def clusters(
    name: str = typer.Argument(..., help="A saved dpmm model."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    scale_by_size: bool = typer.Option(False, "--scale-by-size", help="Shrink each image by its cluster's size."),
    chain: int = typer.Option(0, help="Which chain's clusters to show."),
    per_row: int = typer.Option(12, "--per-row", min=1, help="Images per row."),
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Draw every cluster's posterior-mean image in a grid, largest first."""
    from digitlab.figures import clusters_image, save_png
    from digitlab.models.dpmm import cluster_means

    model = _load(name, home)
    means, sizes = cluster_means(model, chain=chain)
    save_png(clusters_image(means, sizes, scale_by_size=scale_by_size, per_row=per_row), out)
    st = model.chains_[chain]
    majority = [int(model.classes_[np.argmax(lc)]) if len(model.classes_) and lc.sum() else None
                for lc in st.label_counts]
    result = {"name": name, "chain": chain, "out": out, "n_clusters": len(sizes),
              "sizes": sizes.tolist(), "majority_digit": majority, "alpha": st.alpha}
    emit(result, fmt, render=lambda: console.print(
        f"{len(sizes)} clusters of chain {chain} (sizes {', '.join(map(str, sizes[:12].tolist()))}"
        f"{', ...' if len(sizes) > 12 else ''}) drawn in {out}"))


@dpmm_app.command("complete")
def complete_cmd(
    name: str = typer.Argument(..., help="A saved dpmm model."),
    keep: str = typer.Option(..., "--keep", help="Visible half: top, bottom, left or right."),
    n: int = typer.Option(8, "--n", min=1, max=64, help="Test digits to complete (split evenly over the digits)."),
    seed: int = typer.Option(0, help="Seed for choosing the test digits."),
    out: Path | None = typer.Option(None, "--out", help="PNG file to write (optional: the numbers alone are "
                                                        "printed without it)."),
    data_dir: Path | None = DataDirOption,
    home: Path | None = HomeOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Hide half of some test digits and draw the posterior-predictive completion above each true digit."""
    from digitlab.data import load_mnist
    from digitlab.figures import completions_image, save_png
    from digitlab.models.dpmm import binarize, complete, half_mask

    mask = half_mask(keep)
    model = _load(name, home)
    xt, yt = load_mnist(settings_from(data_dir=data_dir, home=home).data_dir, "test")
    digits = [int(d) for d in model.classes_] or sorted(int(d) for d in np.unique(yt))
    rng = np.random.default_rng(seed)
    per = [n // len(digits) + (1 if i < n % len(digits) else 0) for i in range(len(digits))]
    idx = np.concatenate([rng.choice(np.flatnonzero(yt == d), size=k, replace=False)
                          for d, k in zip(digits, per, strict=True) if k > 0])
    truth = binarize(xt[idx], float(model.threshold))
    pred = np.stack([complete(model, xt[i], mask) for i in idx])
    if out is not None:
        save_png(completions_image(pred, truth, mask), out)
    hidden = ~mask
    mae = np.abs(pred[:, hidden] - truth[:, hidden]).mean(axis=1)
    acc = ((pred[:, hidden] >= 0.5) == truth[:, hidden].astype(bool)).mean(axis=1)
    # what the model predicts for the hidden half when it sees nothing: the baseline the visible half must beat
    blind = complete(model, xt[idx[0]], np.zeros(784, dtype=bool))
    baseline = np.abs(blind[hidden][None, :] - truth[:, hidden]).mean(axis=1)
    result = {"name": name, "keep": keep, "out": out, "seed": seed,
              "images": [{"test_index": int(i), "label": int(yt[i]), "hidden_mae": float(e),
                          "hidden_pixel_accuracy": float(a), "probabilities": np.round(p, 4).tolist()}
                         for i, e, a, p in zip(idx, mae, acc, pred, strict=True)],
              "mean_hidden_mae": float(mae.mean()), "mean_hidden_pixel_accuracy": float(acc.mean()),
              "mean_hidden_mae_unseen": float(baseline.mean())}
    drawn = f", drawn in {out}" if out is not None else ""
    emit(result, fmt, title=f"Completions from the {keep} half{drawn} (hidden-pixel MAE "
                            f"{mae.mean():.3f}; {baseline.mean():.3f} when nothing is visible)",
         columns=["test index", "label", "hidden-pixel MAE", "hidden-pixel accuracy"],
         rows=[(int(i), int(yt[i]), float(e), float(a)) for i, e, a in zip(idx, mae, acc, strict=True)])
