"""Sweeps (digitlab.sweep, digitlab sweep): trials, validation, runs recorded, the best saved, Ray Tune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digitlab.errors import UserError
from digitlab.runs import list_runs
from digitlab.settings import get_settings
from digitlab.store import Store
from digitlab.sweep import Choice, SweepSpec, Uniform, expand_trials, sweep

GRID = {"C": Choice((0.05, 1.0)), "max_iter": Choice((30, 100))}


def _spec(**kw) -> SweepSpec:
    base = {"model": "logreg", "space": GRID, "train_size": 600, "folds": 2, "seed": 0}
    return SweepSpec(**{**base, **kw})


def test_expand_trials_grid_and_random() -> None:
    assert expand_trials(_spec()) == [{"C": 0.05, "max_iter": 30}, {"C": 0.05, "max_iter": 100},
                                      {"C": 1.0, "max_iter": 30}, {"C": 1.0, "max_iter": 100}]
    random = expand_trials(_spec(search="random", trials=3))
    assert len(random) == 3 and len({json.dumps(t, sort_keys=True) for t in random}) == 3  # distinct combinations
    assert random == expand_trials(_spec(search="random", trials=3))  # the seed decides
    draws = expand_trials(_spec(space={"C": Uniform(0.01, 10, log=True)}, search="random", trials=5))
    assert all(0.01 <= t["C"] <= 10 for t in draws) and len({t["C"] for t in draws}) == 5
    with pytest.raises(UserError, match="ranges are for --search random"):
        expand_trials(_spec(space={"C": Uniform(0.1, 1)}))


def test_a_2x2_sweep_records_4_runs_and_saves_the_best(home: Path, cli) -> None:
    settings = get_settings()
    result = sweep(_spec(save="best-logreg"), settings=settings)
    assert len(result.trials) == 4 and result.workers >= 1
    runs = [r for r in list_runs(Store(settings.store_path)) if r.kind == "sweep"]
    assert len(runs) == 4 and {r.run for r in runs} == {t.run for t in result.trials}
    by_run = {r.run: r for r in runs}
    for t in result.trials:
        r = by_run[t.run]
        assert r.params["C"] == t.params["C"] and r.params["max_iter"] == t.params["max_iter"]
        assert r.accuracy == pytest.approx(t.accuracy) and len(r.metrics["folds"]) == 2
        assert r.metrics["sweep"] == result.sweep and r.metrics["validation"] == "2-fold cross-validation"
    accs = [t.accuracy for t in result.trials]
    assert accs == sorted(accs, reverse=True) and 0.6 < accs[0] <= 1
    assert result.saved is not None and result.saved.card.notes["sweep"]["trial"] == result.best.run
    assert result.saved.estimator.get_params()["C"] == result.best.params["C"]
    shown = cli("compare", *[t.run for t in result.trials[:2]], "--format", "json")
    assert shown.exit_code == 0, shown.stderr
    assert {r["run"] for r in json.loads(shown.stdout)["runs"]} == {t.run for t in result.trials[:2]}


def test_sweep_on_held_out_rows_in_worker_processes(home: Path) -> None:
    result = sweep(_spec(folds=None, where="hash(id) % 4 = 0", workers=2), settings=get_settings())
    assert result.workers == 2 and len(result.trials) == 4
    assert all(len(t.folds) == 1 and t.std == 0 for t in result.trials)
    serial = sweep(_spec(folds=None, where="hash(id) % 4 = 0", workers=1, record=False), settings=get_settings())
    assert {json.dumps(t.params): t.accuracy for t in result.trials} == \
        {json.dumps(t.params): t.accuracy for t in serial.trials}  # processes or not: the same trials


def test_cli_sweep(cli, home: Path) -> None:
    res = cli("sweep", "logreg", "--grid", "C=0.1,1", "--train-size", "400", "--folds", "2", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert len(doc["trials"]) == 2 and doc["best"]["run"] == doc["trials"][0]["run"]
    assert doc["compare"].startswith("digitlab compare ")
    assert cli("sweep", "logreg", "--grid", "C=a,b").exit_code == 2
    bad = cli("sweep", "logreg", "--grid", "nope=1,2")
    assert bad.exit_code == 2 and "unknown parameter 'nope'" in bad.stderr
    assert "validates on held-out rows" in cli("sweep", "cnn", "--grid", "lr=0.001,0.01").stderr
    dry = json.loads(cli("sweep", "logreg", "--grid", "C=0.1,1,10", "--dry-run", "--folds", "2",
                         "--format", "json").stdout)
    assert len(dry["trials"]) == 2 and all(t["run"] is None for t in dry["trials"])


def test_a_2x2_sweep_on_ray_tune_matches_local(ray_local, home: Path) -> None:
    settings = get_settings()
    ray_result = sweep(_spec(engine="ray"), settings=settings)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one thread per trial, as on Ray (in this process: no pool to start)
        local = sweep(_spec(record=False, workers=1), settings=settings)
    assert len([r for r in list_runs(Store(settings.store_path)) if r.kind == "sweep"]) == 4
    assert {json.dumps(t.params): round(t.accuracy, 6) for t in ray_result.trials} == \
        {json.dumps(t.params): round(t.accuracy, 6) for t in local.trials}


def test_cnn_sweep_on_ray_stops_trials_early_with_asha(ray_local, home: Path) -> None:
    # the good learning rates first: ASHA stops a trial that reaches a rung behind those recorded there
    # (2 epochs: one rung, at epoch 1; one trial at a time, so the worst starts when the good one is recorded)
    spec = SweepSpec(model="cnn", space={"lr": Choice((1e-2, 1e-6))}, train_size=300, workers=1,
                     where="hash(id) % 4 = 0", params={"recipe": "fast", "width": 4, "epochs": 2, "int8": False},
                     engine="ray")
    result = sweep(spec, settings=get_settings())
    assert len(result.trials) == 2 and result.workers == 1
    assert all(t.epochs is not None and 1 <= t.epochs <= 2 for t in result.trials)
    worst = next(t for t in result.trials if t.params["lr"] == 1e-6)
    assert worst.stopped and worst.epochs == 1  # ASHA cut the worst short at the rung
    runs = [r for r in list_runs(Store(get_settings().store_path)) if r.kind == "sweep"]
    assert len(runs) == 2 and all("epochs" in r.metrics for r in runs)
