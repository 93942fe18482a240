"""The ilastik-style row: a random forest on per-pixel filter features, trained on the painted pixels.

ilastik's pixel classification computes a bank of smoothed-image features at several scales (Gaussian
smoothing, Laplacian of Gaussian, gradient magnitude, difference of Gaussians, structure-tensor and Hessian
eigenvalues) and trains a random forest on the pixels the user painted. This follows that recipe in 2D per
slice (its "2D" mode), with scikit-learn's forest; features are computed once per volume and kept.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from sklearn.ensemble import RandomForestClassifier

SCALES = (0.7, 1.6, 3.5, 5.0, 10.0)


def slice_features(image: np.ndarray) -> np.ndarray:
    """(H, W) float -> (H, W, F) float32 features: raw smoothed at 0.3, then 8 per scale."""
    img = image.astype(np.float32)
    feats = [ndimage.gaussian_filter(img, 0.3)]
    for s in SCALES:
        g = ndimage.gaussian_filter(img, s)
        feats.append(g)
        feats.append(ndimage.gaussian_laplace(img, s))
        feats.append(ndimage.gaussian_gradient_magnitude(img, s))
        feats.append(g - ndimage.gaussian_filter(img, s * 0.66))
        gr = ndimage.gaussian_filter(img, s * 0.5, order=(1, 0))
        gc = ndimage.gaussian_filter(img, s * 0.5, order=(0, 1))
        feats.extend(_eigen_2x2(ndimage.gaussian_filter(gr * gr, s), ndimage.gaussian_filter(gr * gc, s),
                                ndimage.gaussian_filter(gc * gc, s)))
        feats.extend(_eigen_2x2(ndimage.gaussian_filter(img, s, order=(2, 0)),
                                ndimage.gaussian_filter(img, s, order=(1, 1)),
                                ndimage.gaussian_filter(img, s, order=(0, 2))))
    return np.stack(feats, axis=-1).astype(np.float32)


def _eigen_2x2(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (larger, smaller) of the symmetric matrices [[a, b], [b, c]] per pixel."""
    mean = (a + c) / 2
    root = np.sqrt(((a - c) / 2) ** 2 + b * b)
    return mean + root, mean - root


class ForestSegmenter:
    """Features of every slice of one volume; ``fit`` on painted pixels, ``predict`` every slice."""

    def __init__(self, stack: np.ndarray, seed: int, trees: int = 50, max_samples: int = 60_000):
        lo, hi = np.percentile(stack, (0.5, 99.5))
        normed = (np.clip(stack, lo, hi) - lo) / max(hi - lo, 1e-6)
        self.features = np.stack([slice_features(s) for s in normed]).astype(np.float16)  # (n, H, W, F)
        self.seed, self.trees, self.max_samples = seed, trees, max_samples
        self.forest: RandomForestClassifier | None = None

    def fit(self, labels: np.ndarray, painted: list[int], unknown: int | None = None) -> None:
        """``labels``: (n, H, W) stack; pixels of painted slices that are not ``unknown`` are the training set."""
        y = labels[painted].reshape(-1)
        x = self.features[painted].reshape(-1, self.features.shape[-1])
        keep = np.flatnonzero(y != unknown) if unknown is not None else np.arange(y.size)
        rng = np.random.default_rng(self.seed)
        if keep.size > self.max_samples:  # balanced subsample: every class keeps its share or all its pixels
            per_class = self.max_samples // max(1, len(np.unique(y[keep])))
            chosen = [rng.permutation(idx)[:per_class] for idx in (keep[y[keep] == c] for c in np.unique(y[keep]))]
            keep = np.concatenate(chosen)
        self.forest = RandomForestClassifier(n_estimators=self.trees, min_samples_leaf=2, max_features="sqrt",
                                             class_weight="balanced", n_jobs=1, random_state=self.seed)
        self.forest.fit(x[keep].astype(np.float32), y[keep])

    def predict(self) -> np.ndarray:
        assert self.forest is not None
        n, h, w, f = self.features.shape
        out = np.empty((n, h, w), dtype=np.int64)
        for k in range(n):
            out[k] = self.forest.predict(self.features[k].reshape(-1, f).astype(np.float32)).reshape(h, w)
        return out
