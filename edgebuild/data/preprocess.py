"""Deterministic, numpy-only preprocessing: area resize, binarisation, normalisation, splitting."""

from __future__ import annotations

import numpy as np

from edgebuild.errors import DatasetError


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of area (box-filter) weights; each row sums to 1.

    Output pixel j covers input interval [j*n_in/n_out, (j+1)*n_in/n_out); every input pixel
    contributes in proportion to its overlap. Exact block averaging for integer factors.
    """
    edges = np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixel = np.arange(n_in, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, pixel + 1) - np.maximum(lo, pixel), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resize (N, H, W) images to (N, size[0], size[1]) in float64 arithmetic, float32 result."""
    h, w = size
    if images.shape[1:] == (h, w):
        return images
    rows, cols = area_matrix(images.shape[1], h), area_matrix(images.shape[2], w)
    return np.einsum("ih,nhw,jw->nij", rows, images.astype(np.float64), cols, optimize=True).astype(np.float32)


def binarize(images: np.ndarray, threshold: float) -> np.ndarray:
    """1.0 where the pixel is >= threshold, else 0.0."""
    return (images >= threshold).astype(np.float32)


def normalize(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(x - mean) / std in float32."""
    return ((images - np.float32(mean)) / np.float32(std)).astype(np.float32)


def split_indices(n: int, *, test: int, val: int, seed: int, limit: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministically shuffle ``range(n)`` (optionally keep ``limit``) and cut test, val, train.

    Pass ``test=0`` when the source has an official test set.
    """
    order = np.random.default_rng(seed).permutation(n)
    if limit is not None:
        order = order[:limit]
    if test + val >= len(order):
        raise DatasetError(f"split needs test ({test}) + val ({val}) < the {len(order)} samples available",
                           field="dataset.split", fix="lower dataset.split.test/val or raise dataset.limit")
    return order[test + val:], order[test:test + val], order[:test]
