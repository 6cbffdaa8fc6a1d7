"""Every command and SQL query in README.md and docs/*.md is run, so that none can rot.

The code blocks of each document are taken in order (```bash, ```console, ```sh and ```sql; Python
examples are not commands and are left to the API tests). Each line of a command block must be a
``digitlab`` command (``$ `` prompts, ``\\`` continuations and ``# comments`` are understood); each
statement of an SQL block goes through ``digitlab sql``. Every one must exit 0. All the commands of
one document share one sandbox: a fresh home, a copy of MNIST as the data folder, and a working
folder holding the files the examples name (``my-seven.png``, ``digits.csv``, ``test.csv``, ...).

A block that cannot run here is preceded by ``<!-- not run: REASON -->``, and the reason is required
(``digitlab serve`` runs until stopped; ``curl`` needs a running server; ``data fetch`` downloads).
A new command that is neither runnable nor marked fails this test.

The examples train on the full MNIST; here every ``digitlab train`` trains on at most
:data:`TRAIN_CAP` images (``--train-size``), the CNN for one epoch, and ``learning-curve`` keeps its
sizes up to the cap: the test checks that the commands work as written, the benchmarks measure them.
"""

from __future__ import annotations

import gzip
import re
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

if TYPE_CHECKING:
    from digitlab.data import PenDigits

_REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [_REPO / "README.md", *sorted((_REPO / "docs").glob("*.md"))]
TRAIN_CAP = 1000
_BLOCK = re.compile(r"(?:<!--\s*not run:(?P<reason>[^>]*)-->\s*\n)?```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)```",
                    re.S)
_COMMAND_LANGS = {"bash", "console", "sh", "shell"}


def blocks(text: str) -> list[tuple[str, str, str | None, int]]:
    """(language, body, the not-run reason or None, line number) of each fenced block of a Markdown text."""
    return [(m["lang"], m["body"], None if m["reason"] is None else m["reason"].strip(),
             text.count("\n", 0, m.start("body")) + 1) for m in _BLOCK.finditer(text)]


def commands(body: str) -> list[str]:
    """The command lines of a shell block: prompts stripped, continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\s*\\\n\s*", " ", body)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        if line and not line.startswith("#"):
            out.append(line)
    return out


def statements(body: str) -> list[str]:
    """The SQL statements of an SQL block (``--`` comments dropped)."""
    text = "\n".join(line for line in body.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def capped(args: list[str]) -> list[str]:
    """``args`` of a ``digitlab`` command with training capped at :data:`TRAIN_CAP` images (see the module doc)."""
    out = list(args)
    if out[:1] == ["train"] and "--dry-run" not in out and "--help" not in out:
        if "--train-size" in out:
            i = out.index("--train-size") + 1
            out[i] = str(min(int(out[i]), TRAIN_CAP))
        else:
            out += ["--train-size", str(TRAIN_CAP)]
        if len(out) > 1 and out[1] == "cnn":
            out += ["--epochs", "1"]
    if out[:1] == ["learning-curve"] and "--sizes" in out:
        i = out.index("--sizes") + 1
        out[i] = ",".join(s for s in out[i].split(",") if int(s) <= TRAIN_CAP) or str(TRAIN_CAP)
    return out


def _digit_png(image: np.ndarray, path: Path, *, dark_on_light: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = 255 - image if dark_on_light else image
    Image.fromarray(pixels.astype(np.uint8)).resize((140, 140)).convert("RGB").save(path)


def _pen_digits(mnist_dir: Path) -> PenDigits:
    """8 digits of each of the 30 writers of the shared pendigits file (or, without it, simple drawn lines)."""
    from digitlab.data import PenDigits, read_unipen

    shared = mnist_dir.parent / "pendigits" / "pendigits-orig.tra.gz"
    if shared.exists():
        d = read_unipen(shared)
        rows = np.concatenate([np.flatnonzero(d.writers == w)[:8] for w in np.unique(d.writers)])
        return PenDigits(tuple(d.strokes[i] for i in rows), d.labels[rows], d.writers[rows])
    rng = np.random.default_rng(0)
    n = 240
    strokes = tuple([np.cumsum(rng.integers(-20, 21, size=(12, 2)), axis=0).astype(np.float64) + 200]
                    for _ in range(n))
    return PenDigits(strokes, np.arange(n, dtype=np.int64) % 10, 1 + np.arange(n, dtype=np.int64) % 30)


def make_files(work: Path, mnist_dir: Path, x: np.ndarray, y: np.ndarray) -> None:
    """The files the documents' examples name, made from MNIST test digits."""
    from digitlab.data import write_csv, write_image_folder, write_npz, write_unipen
    from digitlab.data.parquet import write_parquet

    first = {d: int(np.flatnonzero(y == d)[0]) for d in range(10)}
    for name, d in (("my-seven.png", 7), ("my-two.jpg", 2), ("my-digit.png", 4), ("my_digit.png", 7),
                    ("my-seven-jpg.jpg", 7), ("photo_of_a_3.jpg", 3), ("drawing.png", 5), ("digit.png", 3)):
        _digit_png(x[first[d]], work / name)
    write_csv(work / "digits.csv", x[:300], y[:300])
    (work / "path" / "to").mkdir(parents=True)
    write_csv(work / "path" / "to" / "digits.csv", x[300:600], y[300:600])
    with gzip.open(work / "digits_data.csv.gz", "wt") as f:
        f.write((work / "digits.csv").read_text())
    write_npz(work / "mnist.npz", (x[:500], y[:500]), (x[500:700], y[500:700]))
    write_image_folder(work / "my_digits", x[:200], y[:200])
    write_parquet(work / "train-00000-of-00001.parquet", x[:300], y[:300])  # Hugging Face's mnist layout
    (work / "test.csv").write_text(",".join(f"pixel{i}" for i in range(784)) + "\n" + "\n".join(
        ",".join(map(str, row)) for row in x[:100].reshape(100, -1)) + "\n")
    write_unipen(work / "pendigits-orig.tra.gz", _pen_digits(mnist_dir))
    downloads = work / "home" / "Downloads" / "mnist"  # `data fetch --from ~/Downloads/mnist`
    downloads.mkdir(parents=True)
    for f in mnist_dir.glob("*-ubyte*"):
        shutil.copy(f, downloads / f.name)


def _corrections(home: Path, x: np.ndarray, y: np.ndarray) -> None:
    """30 corrections in the store's ``drawings`` table, as MLPaint's users make them: 3 per digit, by two profiles."""
    from digitlab.corrections import Corrections
    from digitlab.store import Store

    corrections = Corrections(Store(home / "digitlab.duckdb"))
    for d in range(10):
        for k, i in enumerate(np.flatnonzero(y == d)[:3]):
            corrections.add(pixels=x[i], label=d, profile="ann" if k else "bob", predicted=(d + 1) % 10,
                            model="default")


@pytest.mark.parametrize("doc", DOCUMENTS, ids=[d.name for d in DOCUMENTS])
def test_every_command_and_query_of_the_document_runs(doc: Path, tmp_path: Path, mnist_dir: Path, mnist_test,
                                                       runner, monkeypatch: pytest.MonkeyPatch) -> None:
    from digitlab.cli import app

    work = tmp_path / "work"
    work.mkdir()
    data = tmp_path / "mnist"
    data.mkdir()
    if doc.name != "README.md":  # the README fetches MNIST itself (data fetch --from)
        for f in mnist_dir.glob("*-ubyte*"):
            shutil.copy(f, data / f.name)
    make_files(work, mnist_dir, *mnist_test)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(work / "home"))
    monkeypatch.setenv("DIGITLAB_HOME", str(tmp_path / "dlhome"))
    monkeypatch.setenv("DIGITLAB_DATA", str(data))
    monkeypatch.setenv("COLUMNS", "100")
    if doc.name == "learn.md":  # the page's corrections the document's commands read (issue 15)
        _corrections(tmp_path / "dlhome", *mnist_test)
    ran = 0
    found = blocks(doc.read_text(encoding="utf-8"))
    for lang, body, reason, line in found:
        if reason is not None:
            assert reason, f"{doc.name}:{line}: a 'not run' marker must say why"
            continue
        if lang in _COMMAND_LANGS:
            runs = []
            for command in commands(body):
                args = shlex.split(command, comments=True)
                assert args[0] == "digitlab", (
                    f"{doc.name}:{line}: {command!r} is not a digitlab command; run it here or mark its block "
                    "<!-- not run: REASON -->")
                runs.append(capped([str(Path(a).expanduser()) if a.startswith("~/") else a for a in args[1:]]))
        elif lang == "sql":
            runs = [["sql", stmt, "--format", "json"] for stmt in statements(body)]
        else:
            continue
        for args in runs:
            result = runner.invoke(app, args)
            assert result.exit_code == 0, (f"{doc.name}:{line}: digitlab {shlex.join(args)} exited "
                                           f"{result.exit_code}:\n{result.stderr}{result.stdout[-2000:]}")
            ran += 1
    if any(lang in _COMMAND_LANGS | {"sql"} and reason is None for lang, _, reason, _ in found):
        assert ran > 0


def test_blocks_and_markers_are_found() -> None:
    text = ("<!-- not run: starts a server -->\n```bash\ndigitlab serve\n```\n\n"
            "```sql\nSELECT 1; -- one\nSELECT 2;\n```\n")
    found = [(lang, reason) for lang, _, reason, _ in blocks(text)]
    assert found == [("bash", "starts a server"), ("sql", None)]
    assert statements("-- a\nSELECT 1;\nSELECT\n 2;") == ["SELECT 1", "SELECT\n 2"]
    assert commands("$ digitlab a \\\n  --b 1   # note\n\n# only a comment\ndigitlab c") == [
        "digitlab a --b 1   # note", "digitlab c"]
    assert capped(["train", "logreg"]) == ["train", "logreg", "--train-size", "1000"]
    assert capped(["train", "cnn", "--train-size", "5000"]) == [
        "train", "cnn", "--train-size", "1000", "--epochs", "1"]
    assert capped(["learning-curve", "x", "--sizes", "100,5000"]) == ["learning-curve", "x", "--sizes", "100"]
