"""Meta labels guessed from file names and intensities, when the file's header does not say.

Modality (when there is no DICOM Modality tag): CT when the 1st intensity percentile is at or below -500
(air is -1000 HU; MR and PET intensities are never that negative); else a token of the file name decides
(``ct``; ``mr``, ``t1``, ``t2``, ``flair``...); else ``"unknown"`` (normalised like MR).
"""

from __future__ import annotations

import re

import numpy as np

CT_AIR_PERCENTILE_HU = -500.0
MR_TOKENS = frozenset({"mr", "mri", "t1", "t1w", "t2", "t2w", "flair", "pd", "pdw", "dwi", "bold", "cine"})


def guess_modality(array: np.ndarray, name: str) -> str:
    """See the module docstring; a strided sample keeps it cheap on big volumes."""
    flat = array.reshape(-1)
    sample = flat[:: max(1, flat.size // 500_000)]
    if sample.size and float(np.percentile(sample, 1)) <= CT_AIR_PERCENTILE_HU:
        return "CT"
    tokens = set(re.split(r"[^a-z0-9]+", name.lower()))
    if "ct" in tokens:
        return "CT"
    return "MR" if tokens & MR_TOKENS else "unknown"


def series_from_stem(stem: str) -> str:
    """Series name from a file name: drop BIDS key-value parts, number tokens and trailing counters.

    ``sub-01_ses-2_T1w`` -> ``T1w``; ``brain_001`` -> ``brain``; ``patient007_frame01`` -> ``patient_frame``.
    """
    kept = []
    for token in re.split(r"[_\s.]+", stem):
        if not token or "-" in token or token.isdigit():
            continue
        kept.append(re.sub(r"(?<=[A-Za-z])\d{2,}$", "", token))
    return "_".join(kept)


def subject_key(stem: str) -> str:
    """What identifies the subject in a file name: the BIDS ``sub-`` entity when present, else the stem."""
    match = re.search(r"(?:^|_)(sub-[A-Za-z0-9]+)", stem)
    return match.group(1) if match else stem
