"""Deploying without torch: ``digitlab predict default digit.png`` in a fresh venv, beside today's figure.

Run: python benchmarks/bench_deploy.py [--repeats 5] [--venv DIR] [--main REF]

* builds a fresh venv with ``pip install .`` of this tree (no extras: no torch), unless ``--venv`` names one;
* times ``digitlab predict default digit.png --format json`` (wall seconds, and the peak resident memory of
  that process, from ``wait4``) in, alternately, one run after another:
  - **today**: the ``--main`` tree (default ``main``, taken with ``git archive``) in this Python's
    environment, where torch is installed and imported by the CNN;
  - **this tree, full install**: the same environment, this tree's code;
  - **this tree, torch-free venv**: the fresh venv, which has no torch;
* in the torch-free venv, times one explanation of the bundled CNN (occlusion on its int8 graph) and one
  int8 prediction, and checks the shipped ``model.onnx`` on the 10,000 MNIST test digits with plain ONNX
  Runtime; then the same with torch installed (integrated gradients), for comparison.

Writes section ``deploy`` of BENCHMARKS.md. Targets: <= 0.8 s and <= 150 MB without torch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _report import table, write_section

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB and stdout of one run of ``cmd``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()[-500:]}")
    return wall, usage.ru_maxrss / 1024, out


def fresh_venv(folder: Path) -> Path:
    """A venv with this tree installed, without extras; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    return python


def main_tree(ref: str, into: Path) -> Path:
    """The ``src`` folder of ``ref`` (git archive), for today's figure."""
    archive = into / "main.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), ref, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "main", filter="data")
    return into / "main" / "src"


_PROBE = """
import sys, time, json, numpy as np
t0 = time.perf_counter()
from digitlab.models.io import load_model, bundled_dir
from digitlab.data import load_mnist
from digitlab.explain import explain
import onnxruntime as ort
est = load_model(bundled_dir()).estimator
x, y = load_mnist(split="test")
est.predict(x[:1]); explain(est, x[0])
ms = []
for i in range(1, 41):
    t = time.perf_counter(); e = explain(est, x[i]); ms.append((time.perf_counter() - t) * 1000)
pred = []
for i in range(41, 241):
    t = time.perf_counter(); est.predict(x[i:i + 1]); pred.append((time.perf_counter() - t) * 1000)
s = ort.InferenceSession(str(bundled_dir() / "model.onnx"), providers=["CPUExecutionProvider"])
label = np.concatenate([s.run(["label"], {"pixels": x[i:i + 2000].reshape(-1, 784)})[0] for i in range(0, 10000, 2000)])
print(json.dumps({"explain_ms": float(np.median(ms)), "method": e.method, "predict_ms": float(np.median(pred)),
                  "onnx_accuracy": float((label == y).mean()), "torch": "torch" in sys.modules}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--venv", type=Path, default=None, help="A torch-free venv with this tree installed.")
    parser.add_argument("--main", default="main", help="The git ref of today's code.")
    args = parser.parse_args()
    from PIL import Image

    from digitlab.data import load_mnist

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        x, y = load_mnist(split="test")
        png = tmp / "digit.png"
        Image.fromarray(x[0]).save(png)
        free_python = args.venv / "bin" / "python" if args.venv else fresh_venv(tmp / "venv")
        has_torch = subprocess.run([str(free_python), "-c", "import torch"], capture_output=True).returncode == 0
        if has_torch:
            raise SystemExit(f"{free_python} has torch: not a torch-free install")
        today_src = main_tree(args.main, tmp)
        base_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        home = tmp / "home"
        cmd = ["-m", "digitlab", "predict", "default", str(png), "--format", "json", "--home", str(home)]
        setups = [
            (f"today ({args.main}), torch installed", [sys.executable, *cmd],
             {**base_env, "PYTHONPATH": str(today_src)}),
            ("this tree, full install (torch installed)", [sys.executable, *cmd],
             {**base_env, "PYTHONPATH": str(ROOT / "src")}),
            ("this tree, fresh venv without torch", [str(free_python), *cmd], base_env),
        ]
        results: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in setups}
        for _label, command, env in setups:  # warm the file cache once
            _, _, out = timed(command, env)
            assert json.loads(out)["predictions"][0]["digit"] == int(y[0]), out
        for _ in range(args.repeats):
            for label, command, env in setups:
                wall, rss, _ = timed(command, env)
                results[label].append((wall, rss))
        rows = [[label, round(statistics.median(w for w, _ in r), 3), round(min(w for w, _ in r), 3),
                 round(statistics.median(m for _, m in r), 1)] for label, r in results.items()]
        probe = json.loads(subprocess.run([str(free_python), "-c", _PROBE], capture_output=True, text=True,
                                          check=True, env=base_env).stdout)
        full = json.loads(subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True,
                                         env={**base_env, "PYTHONPATH": str(ROOT / "src")}).stdout)
    load = os.getloadavg()[0]
    body = (f"`digitlab predict default digit.png --format json` (one MNIST test digit), {args.repeats} runs of "
            "each setup taken in turn, after one warm-up run each; peak memory is the process's maximum resident "
            f"set (`wait4`). 1-minute load average at the end: {load:.1f} on {os.cpu_count()} cores (shared with "
            "other engineers' jobs, so the walls are inflated alike; compare the rows, not with other sections). "
            "Targets without torch: <= 0.8 s and <= 150 MB.\n\n"
            + table(["setup", "wall s (median)", "wall s (best)", "peak MB (median)"], rows)
            + "\n\nIn the torch-free venv: one explanation of the bundled CNN "
            f"({probe['method']} on its int8 graph) {probe['explain_ms']:.1f} ms (median of 40; budget 50 ms), one "
            f"int8 prediction {probe['predict_ms']:.2f} ms (median of 200), the shipped `model.onnx` "
            f"{probe['onnx_accuracy']:.2%} right on the 10,000 MNIST test digits through plain ONNX Runtime; "
            f"torch imported: {probe['torch']}. In the same run, with torch installed: one explanation "
            f"({full['method']} of the float network) {full['explain_ms']:.1f} ms, one int8 prediction "
            f"{full['predict_ms']:.2f} ms.")
    write_section("deploy", "Deploying: prediction without torch", body)
    print(body)


if __name__ == "__main__":
    main()
