"""Data (module 10): DataLoader batching/shuffling/memory, MNIST files and checksums, atomic downloads."""
from __future__ import annotations

import gzip
import http.server
import shutil
import threading
import tracemalloc
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.data import (MNIST, MNIST_FILES, DataLoader, Dataset, DownloadError, TensorDataset, dataset_root,
                            parse_idx)

ALL_FILES = [name for pair in MNIST_FILES.values() for name in pair]


# -- DataLoader ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,batch,drop_last,shuffle", [(10, 3, False, False), (10, 3, True, True), (12, 4, True, False),
                                                       (12, 4, False, True), (5, 8, False, True), (5, 8, True, False)])
def test_each_epoch_covers_every_example_once(n, batch, drop_last, shuffle):
    ds = TensorDataset(np.arange(n, dtype=np.float32)[:, None], np.arange(n))
    loader = DataLoader(ds, batch_size=batch, shuffle=shuffle, drop_last=drop_last, seed=1)
    for _ in range(3):
        batches = list(loader)
        assert len(batches) == len(loader)
        seen = np.concatenate([b[1].data for b in batches]) if batches else np.array([], np.int64)
        kept = (n // batch) * batch if drop_last else n
        assert len(seen) == kept and len(set(seen.tolist())) == kept
        if not drop_last:
            assert sorted(seen.tolist()) == list(range(n))
        assert all(len(b[1]) == batch for b in (batches if drop_last else batches[:-1]))
        for x, y in batches:
            assert isinstance(x, tt.Tensor) and x.dtype == np.float32 and y.dtype == np.int64
            assert np.array_equal(x.data[:, 0], y.data), "examples keep their labels"


def test_shuffle_is_reproducible_with_a_seed_and_differs_between_epochs():
    ds = TensorDataset(np.arange(100), np.arange(100))
    run = lambda seed: [b[0].data.tolist() for _ in range(3) for b in DataLoader(ds, 10, shuffle=True, seed=seed)]
    assert run(3) == run(3)
    assert run(3) != run(4)
    loader = DataLoader(ds, 100, shuffle=True, seed=3)
    first, second = next(iter(loader))[0].data, next(iter(loader))[0].data
    assert not np.array_equal(first, second)


def test_without_a_seed_tt_manual_seed_makes_shuffling_repeatable():
    ds = TensorDataset(np.arange(50))
    tt.manual_seed(11)
    a = [b[0].data.tolist() for b in DataLoader(ds, 7, shuffle=True)]
    tt.manual_seed(11)
    b = [b[0].data.tolist() for b in DataLoader(ds, 7, shuffle=True)]
    assert a == b and a != [list(range(k, min(k + 7, 50))) for k in range(0, 50, 7)]


def test_no_shuffle_is_in_order_and_generic_datasets_are_collated():
    class Pairs(Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return np.full(2, i, dtype=np.float32), i

    batches = list(DataLoader(Pairs(), batch_size=3))
    assert [b[1].data.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert batches[0][0].shape == (3, 2)


def test_an_epoch_does_not_copy_the_dataset():
    """tracemalloc peak over a shuffled epoch stays at a few batches, far below the 31 MB of images."""
    images = np.zeros((10_000, 1, 28, 28), dtype=np.float32)
    ds = TensorDataset(images, np.zeros(10_000, dtype=np.int64))
    loader = DataLoader(ds, batch_size=64, shuffle=True, seed=0)
    batch_bytes = 64 * 784 * 4
    tracemalloc.start()
    try:
        count = sum(len(y) for _, y in loader)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert peak < 4 * batch_bytes + 10_000 * 8 * 3, f"peak {peak} bytes for {images.nbytes} bytes of images"
    # and the check can fail: a loader that permutes the whole array first blows the bound
    tracemalloc.start()
    try:
        _ = images[np.random.default_rng(0).permutation(10_000)]
        copying_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert copying_peak > 4 * batch_bytes + 10_000 * 8 * 3


def test_loader_and_dataset_errors_are_clear():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(TensorDataset(np.zeros(3)), batch_size=0)
    with pytest.raises(ValueError, match=r"same first dimension.*\(3,\).*\(4,\)"):
        TensorDataset(np.zeros(3), np.zeros(4))


# -- IDX and MNIST from the shared datasets folder ------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_train(datasets):
    return MNIST(datasets, train=True)


def test_mnist_train_and_test_shapes_dtypes_and_ranges(datasets, mnist_train):
    test = MNIST(datasets, train=False)
    for ds, n in [(mnist_train, 60_000), (test, 10_000)]:
        assert len(ds) == n
        assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == np.float32
        assert ds.images.min() == 0.0 and ds.images.max() == 1.0
        assert ds.labels.shape == (n,) and ds.labels.dtype == np.int64
        assert set(np.unique(ds.labels).tolist()) == set(range(10))
    assert mnist_train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first training labels
    x, y = next(iter(DataLoader(mnist_train, batch_size=32)))
    assert x.shape == (32, 1, 28, 28) and y.data.tolist()[:5] == [5, 0, 4, 1, 9]


def test_mnist_root_defaults_to_the_environment_variable(datasets, monkeypatch):
    monkeypatch.setenv("TINYTORCH_DATASETS", str(datasets))
    assert dataset_root() == datasets
    assert len(MNIST(train=False)) == 10_000
    monkeypatch.delenv("TINYTORCH_DATASETS")
    with pytest.raises(ValueError, match="TINYTORCH_DATASETS"):
        MNIST(train=False)


def _copy_mnist(datasets: Path, dest: Path, split: str = "test") -> Path:
    (dest / "mnist").mkdir(parents=True)
    for name in MNIST_FILES[split]:
        shutil.copy(datasets / "mnist" / name, dest / "mnist" / name)
        (dest / "mnist" / name).chmod(0o644)
    return dest / "mnist"


def test_missing_file_says_where_it_looked_and_how_to_fix(tmp_path):
    (tmp_path / "mnist").mkdir()
    with pytest.raises(FileNotFoundError) as info:
        MNIST(tmp_path, train=False)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in message and str(tmp_path / "mnist") in message
    assert "TINYTORCH_DATASETS" in message and "download=True" in message


def test_truncated_gzip_is_a_clear_error(datasets, tmp_path):
    folder = _copy_mnist(datasets, tmp_path)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50_000])
    with pytest.raises(ValueError, match="truncated or not a valid gzip"):
        MNIST(tmp_path, train=False)


def test_checksum_mismatch_is_a_clear_error(datasets, tmp_path):
    folder = _copy_mnist(datasets, tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(path.read_bytes()))
    data[100] = (data[100] + 1) % 10  # one label changed: a valid file, the wrong bytes
    path.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(ValueError, match="checksum mismatch.*t10k-labels-idx1-ubyte.gz.*expected ff7bcfd4"):
        MNIST(tmp_path, train=False)


def test_parse_idx_validates_magic_and_sizes(datasets):
    labels = parse_idx(gzip.decompress((datasets / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()), "labels")
    assert labels.shape == (10_000,) and labels.dtype == np.uint8
    with pytest.raises(ValueError, match="magic"):
        parse_idx(b"\x1f\x8b\x08\x00" + bytes(20), "gz-not-gunzipped")  # a gzip header is not IDX
    with pytest.raises(ValueError, match="truncated"):
        parse_idx(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(9), "short")


# -- downloads against a local HTTP server ------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate: set = set()  # file names whose body is cut short (after announcing the full length)

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        if name in self.truncate:
            body = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/served; yields (base_url, served folder, handler)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = type("Handler", (_Handler,), {"truncate": set()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", served, handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _serve_test_split(datasets: Path, served: Path) -> None:
    for name in MNIST_FILES["test"]:
        shutil.copy(datasets / "mnist" / name, served / name)


def _assert_download_fails_cleanly(base_url: str, tmp_path: Path, match: str) -> None:
    """Downloading the test split raises a DownloadError matching `match` and leaves no file behind."""
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match=match):
        MNIST(root, train=False, download=True, base_url=base_url)
    assert _leftovers(root / "mnist") == []


def test_download_fetches_verifies_and_writes_atomically(datasets, server, tmp_path):
    base_url, served, _ = server
    _serve_test_split(datasets, served)
    root = tmp_path / "data"
    ds = MNIST(root, train=False, download=True, base_url=base_url)
    assert len(ds) == 10_000 and ds.labels[:3].tolist() == [7, 2, 1]
    assert _leftovers(root / "mnist") == sorted(MNIST_FILES["test"]), "no temporary files left behind"
    for name in MNIST_FILES["test"]:
        (served / name).unlink()
    assert len(MNIST(root, train=False, download=True, base_url=base_url)) == 10_000, "present files are not fetched"


def test_download_404_is_a_clear_error_and_leaves_no_file(server, tmp_path):
    base_url, _, _ = server
    _assert_download_fails_cleanly(base_url, tmp_path, "t10k-images-idx3-ubyte.gz failed: HTTP 404")


def test_download_truncated_body_is_a_clear_error_and_leaves_no_file(datasets, server, tmp_path):
    base_url, served, handler = server
    _serve_test_split(datasets, served)
    handler.truncate.add("t10k-images-idx3-ubyte.gz")
    _assert_download_fails_cleanly(base_url, tmp_path, "t10k-images-idx3-ubyte.gz.*truncated")


def test_download_of_a_truncated_file_is_a_clear_error_and_leaves_no_file(datasets, server, tmp_path):
    """The server sends a complete response, but the file itself is cut short: gunzip fails."""
    base_url, served, _ = server
    source = datasets / "mnist" / "t10k-images-idx3-ubyte.gz"
    (served / source.name).write_bytes(source.read_bytes()[:100_000])
    _assert_download_fails_cleanly(base_url, tmp_path, "truncated or not a valid gzip")


def test_download_checksum_mismatch_is_a_clear_error_and_leaves_no_file(datasets, server, tmp_path):
    base_url, served, _ = server
    shutil.copy(datasets / "mnist" / "train-labels-idx1-ubyte.gz", served / "t10k-images-idx3-ubyte.gz")  # wrong file
    _assert_download_fails_cleanly(base_url, tmp_path, "checksum mismatch")
