"""Datasets: load a recipe's ``dataset`` section into train/val/test arrays, save and reload them.

    ds = load_dataset({"name": "mnist5k", "resize": [14, 14], "split": {"test": 1000, "val": 500}})
    ds.x_train.shape  # (3500, 1, 14, 14) float32, NCHW; labels int64
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgebuild.data import preprocess
from edgebuild.data.sources import load_source
from edgebuild.errors import DatasetError

__all__ = ["Dataset", "load_dataset", "save_dataset", "load_saved"]

_ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass
class Dataset:
    """Train/val/test splits: inputs float32 (N, *shape; images NCHW); labels int64 class ids, float32
    targets (N, k), or -1 when the dataset has none (``meta['labels']`` False); ``meta`` describes them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    meta: dict = field(default_factory=dict)


def load_dataset(spec: dict, *, base_dir: Path | None = None) -> Dataset:
    """Load and preprocess the dataset described by a recipe's ``dataset`` section.

    The split is cut first (by index); every split is then preprocessed the same way:
    scale pixels to [0, 1] -> resize (area) -> binarize -> normalize, giving float32 (N, 1, H, W).
    ``split``: a deterministic shuffle from ``split.seed`` cuts ``test`` then ``val`` samples; the
    rest trains. A source with an official test set (IDX t10k-*, fashion_mnist) uses it for test
    (``test`` caps how many, drawn by the same seed) and splits val from its training part.
    ``limit`` caps the samples pooled for splitting (the training part for official-test sources).
    ``path`` (idx) is relative to ``base_dir`` when given.
    """
    spec = dict(spec or {})
    name = spec.get("name", "mnist5k")
    split = {"test": 1000, "val": 500, "seed": 0, **(spec.get("split") or {})}
    norm = {"mean": 0.0, "std": 1.0, **(spec.get("normalize") or {})}
    resize, threshold, limit = spec.get("resize"), spec.get("binarize"), spec.get("limit")

    src = load_source(name, spec.get("path"), base_dir, spec)
    official = src.x_test is not None
    train_idx, val_idx, test_idx = preprocess.split_indices(
        len(src.x), test=0 if official else split["test"], val=split["val"], seed=split["seed"], limit=limit)
    if official:
        test_idx = np.random.default_rng(split["seed"]).permutation(len(src.x_test))[:split["test"]]
        x_test, y_test = src.x_test[test_idx], src.y_test[test_idx]
    else:
        x_test, y_test = src.x[test_idx], src.y[test_idx]

    def prep(images: np.ndarray) -> np.ndarray:
        images = (images.astype(np.float64) / src.scale).astype(np.float32)
        if src.per_sample_shape:       # (N, *shape) as the source gives it; images were resized on load
            if resize and src.info.get("source") == "arrays":
                if images.ndim != 4:
                    raise DatasetError(f"dataset.resize needs x of rank 4 (N, C, H, W), got {list(images.shape)}",
                                       field="dataset.resize", fix="drop dataset.resize for non-image arrays")
                n, c = images.shape[:2]
                images = preprocess.resize(images.reshape(n * c, *images.shape[2:]), tuple(resize)
                                           ).reshape(n, c, *resize)
        elif resize:
            images = preprocess.resize(images, tuple(resize))
        if threshold is not None:
            images = preprocess.binarize(images, threshold)
        images = preprocess.normalize(images, norm["mean"], norm["std"])
        return images if src.per_sample_shape else images[:, None, :, :]

    ds = Dataset(x_train=prep(src.x[train_idx]), y_train=src.y[train_idx],
                 x_val=prep(src.x[val_idx]), y_val=src.y[val_idx],
                 x_test=prep(x_test), y_test=y_test)
    ds.meta = {
        **src.info,
        "official_test": official,
        "counts": {"train": len(ds.y_train), "val": len(ds.y_val), "test": len(ds.y_test)},
        "preprocessing": {"scale": f"pixels / {src.scale:g} -> [0, 1]" if src.scale != 1 else "none",
                          "resize": list(resize) if resize else None,
                          "resize_method": src.info.get("resize_method") or "area", "binarize": threshold, "normalize": norm},
        "split": split, "limit": limit,
        "input_shape": list(ds.x_train.shape[1:]),
    }
    return ds


def save_dataset(ds: Dataset, path: Path) -> None:
    """Write ``ds`` as an .npz; the same dataset always gives byte-identical files (fixed zip dates)."""
    path = Path(path)
    entries = {name: getattr(ds, name) for name in _ARRAYS}
    entries["meta"] = np.frombuffer(json.dumps(ds.meta, sort_keys=True).encode(), dtype=np.uint8)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in entries.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def load_saved(path: Path) -> Dataset:
    """Read a dataset written by :func:`save_dataset`."""
    try:
        with np.load(Path(path), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in _ARRAYS}
            meta = json.loads(npz["meta"].tobytes().decode())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"not a saved edgebuild dataset: {exc}", file=str(path),
                           fix="delete the file so the dataset stage rebuilds it") from None
    return Dataset(**arrays, meta=meta)
