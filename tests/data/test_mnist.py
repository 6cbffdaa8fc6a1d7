import gzip
import shutil
import time

import pytest

from digitlab.data import fetch_mnist, find_mnist, load_mnist
from digitlab.errors import DataError, DataNotFoundError, DigitlabError


def test_load_counts(mnist_dir):
    _, y = load_mnist(mnist_dir, "train")
    assert y.shape == (60000,)


def test_missing_mnist_says_where_to_put_files(tmp_path):
    with pytest.raises(DataNotFoundError,
                       match=r"MNIST not found in .*digitlab data fetch.*train-images-idx3-ubyte.gz"):
        find_mnist(tmp_path)


def test_accepts_raw_files(tmp_path, mnist_dir):
    for f in mnist_dir.glob("*.gz"):
        (tmp_path / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))
    x, _ = load_mnist(tmp_path, "test")
    assert x.shape == (10000, 28, 28)


def test_fetch_from_local_folder_verifies_checksums(tmp_path, mnist_dir):
    paths = fetch_mnist(tmp_path / "dest", source=mnist_dir)
    assert sorted(p.name for p in paths.values()) == sorted(f.name for f in mnist_dir.glob("*.gz"))


def test_fetch_rejects_a_corrupt_source(tmp_path, mnist_dir):
    src = tmp_path / "src"
    shutil.copytree(mnist_dir, src)
    labels = src / "t10k-labels-idx1-ubyte.gz"
    labels.chmod(0o644)
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch_mnist(tmp_path / "dest", source=src)
    assert not (tmp_path / "dest" / "t10k-labels-idx1-ubyte.gz").exists()


def test_fetch_offline_fails_fast_with_instructions(tmp_path):
    start = time.monotonic()
    with pytest.raises(DigitlabError, match=r"could not download MNIST.*put the four files"):
        fetch_mnist(tmp_path, mirrors=("http://127.0.0.1:9/", "https://mnist.invalid/"), timeout=5)
    assert time.monotonic() - start < 30  # a hang would be a bug, not a slow machine
    assert not list(tmp_path.glob("*.gz"))


# ------------------------------------------------------------------------------------ downloads from a local server

LABELS = "t10k-labels-idx1-ubyte"


@pytest.fixture
def mirror(mnist_dir):
    """A local HTTP mirror of MNIST's test labels whose behaviour each test sets: slow, stalling, failing, corrupt."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = (mnist_dir / f"{LABELS}.gz").read_bytes()
    state = {"mode": "ok", "requests": 0, "chunk": 512, "pause": 0.0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            state["requests"] += 1
            mode = state["mode"]
            if mode == "500-once" and state["requests"] == 1:
                self.send_error(503)
                return
            data = bytes(b ^ 0xFF for b in body) if mode == "corrupt" else body
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if mode == "stall-once" and state["requests"] == 1:
                self.wfile.write(data[:100])
                self.wfile.flush()
                time.sleep(3)  # longer than the client's timeout: the client gives up and tries again
                return
            for i in range(0, len(data), state["chunk"]):
                self.wfile.write(data[i:i + state["chunk"]])
                self.wfile.flush()
                time.sleep(state["pause"])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", state
    server.shutdown()
    server.server_close()


@pytest.fixture
def dest(tmp_path, mnist_dir):
    """A data folder holding three of the four files, so only the test labels are downloaded."""
    d = tmp_path / "dest"
    d.mkdir()
    for f in mnist_dir.glob("*.gz"):
        if not f.name.startswith(LABELS):
            shutil.copy(f, d / f.name)
    return d


def test_a_slow_link_is_not_a_timeout(dest, mirror):
    url, state = mirror
    state.update(chunk=500, pause=0.1)  # about 1 s in all, never more than 0.1 s without data
    seen = []
    paths = fetch_mnist(dest, mirrors=(url,), timeout=0.5, progress=lambda n, d, t: seen.append((n, d, t)))
    assert paths[LABELS].is_file() and load_mnist(dest, "test")[1].shape == (10000,)
    assert seen[-1][1] == seen[-1][2] and len({d for _, d, _ in seen}) > 5  # the bar moved, to the end
    assert state["requests"] == 1


def test_a_stalled_transfer_is_retried(dest, mirror):
    url, state = mirror
    state["mode"] = "stall-once"
    fetch_mnist(dest, mirrors=(url,), timeout=0.5)
    assert state["requests"] == 2 and load_mnist(dest, "test")[1].shape == (10000,)


def test_a_server_error_is_retried(dest, mirror):
    url, state = mirror
    state["mode"] = "500-once"
    fetch_mnist(dest, mirrors=(url,), timeout=2)
    assert state["requests"] == 2


def test_a_corrupt_mirror_is_left_for_the_next(dest, mirror, mnist_dir):
    url, state = mirror
    state["mode"] = "corrupt"
    with pytest.raises(DigitlabError, match=r"could not download MNIST \(t10k-labels.*checksum mismatch|corrupt"):
        fetch_mnist(dest, mirrors=(url,), timeout=2)
    assert state["requests"] == 1  # a file that is not MNIST is not asked for again


def test_offline_fails_fast_and_names_timeout_and_from(tmp_path):
    start = time.monotonic()
    with pytest.raises(DigitlabError, match=r"--timeout.*--from DIR"):
        fetch_mnist(tmp_path, mirrors=("http://127.0.0.1:9/", "https://mnist.invalid/"), timeout=5)
    assert time.monotonic() - start < 10
