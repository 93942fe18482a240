"""Linear probe of the embeddings on the meta labels: which of them a straight line can read off.

No segmentation labels exist in a pre-training run, so the probe asks what the contrast was about: for
each meta label, a logistic regression on the image embeddings of some volumes predicts the label on the
other volumes (held out whole, so a neighbouring slice cannot give the answer away). Its accuracy next to
the majority-class baseline says how much of that meta label the embedding encodes. A label whose values
never recur across volumes (``subject`` with one scan per subject) cannot be probed this way, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_TRAIN = 8


@dataclass
class ProbeResult:
    label: str
    accuracy: float | None  # None: not measurable on this pool
    baseline: float | None  # majority class of the training part, on the test part
    n_test: int
    note: str = ""


def probe_label(vectors: np.ndarray, values: list[str], volume: np.ndarray, label: str,
                seed: int = 0) -> ProbeResult:
    """Train on about 70% of the volumes, test on the rest (only on values the training part has)."""
    y = np.asarray(values)
    ids = np.unique(volume)
    if len(ids) < 2:
        return ProbeResult(label, None, None, 0, "one volume: nothing to hold out")
    rng = np.random.default_rng(seed)
    test_ids = rng.permutation(ids)[:max(1, int(round(0.3 * len(ids))))]
    test = np.isin(volume, test_ids) & (y != "unknown")
    train = ~np.isin(volume, test_ids) & (y != "unknown")
    classes = np.unique(y[train])
    test &= np.isin(y, classes)
    if train.sum() < MIN_TRAIN or len(classes) < 2 or not test.any():
        return ProbeResult(label, None, None, int(test.sum()), "its values do not recur across volumes")
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=500).fit(vectors[train], y[train])
    accuracy = float((clf.predict(vectors[test]) == y[test]).mean())
    values_, counts = np.unique(y[train], return_counts=True)
    majority = values_[np.argmax(counts)]
    return ProbeResult(label, accuracy, float((y[test] == majority).mean()), int(test.sum()))


def probe_all(vectors: np.ndarray, labels: dict[str, list[str]], volume: np.ndarray,
              seed: int = 0) -> list[ProbeResult]:
    return [probe_label(vectors, values, volume, name, seed) for name, values in labels.items() if name != "volume"]
