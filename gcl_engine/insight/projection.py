"""2D projection of slice embeddings with scikit-learn (PCA, or t-SNE initialised from PCA).

Why scikit-learn: it is already what the benchmarks use, it is deterministic given ``random_state``, it has
no just-in-time compiler to warm up (umap-learn's numba costs tens of seconds on a first call and pins
numpy versions), and it also gives the linear probe. PCA is instant and keeps the map's layout steady from
one checkpoint to the next; t-SNE separates clusters (volumes, positions) that PCA overlays.
"""

from __future__ import annotations

import numpy as np

from gcl_engine.insight.config import TSNE_LIMIT


def resolve_method(method: str, n: int) -> str:
    if n < 5:
        return "pca"  # too few points for t-SNE's neighbourhoods
    if method == "auto":
        return "tsne" if n <= TSNE_LIMIT else "pca"
    return method


def project_2d(vectors: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """(n, D) -> ((n, 2) float32 coordinates, the method used)."""
    n = len(vectors)
    used = resolve_method(method, n)
    if n == 0:
        return np.zeros((0, 2), np.float32), used
    x = np.asarray(vectors, dtype=np.float64)
    if n == 1 or np.allclose(x, x[0]):
        return np.zeros((n, 2), np.float32), used
    if used == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
        out = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                   learning_rate="auto").fit_transform(x)
    else:
        from sklearn.decomposition import PCA

        out = PCA(n_components=min(2, x.shape[1]), random_state=seed).fit_transform(x)
        if out.shape[1] < 2:
            out = np.concatenate([out, np.zeros((n, 1))], axis=1)
        out *= np.where(np.sign(out.sum(axis=0) + 1e-12) < 0, -1.0, 1.0)  # a stable sign between checkpoints
    return out.astype(np.float32), used
