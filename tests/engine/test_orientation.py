"""In-plane orientation: the same anatomy stored in another array layout reaches the network identically,
and predictions land back on each file's own voxel grid."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from gcl_engine.config import ModelConfig, PredictConfig, PreprocessConfig, from_json, from_saved_json, to_json
from gcl_engine.data.orientation import InPlaneOrientation, in_plane_orientation
from gcl_engine.data.preprocessing import prepare_label_slices, prepare_volume_slices
from gcl_engine.inference.segmenter import Segmenter, _TorchBackend
from gcl_engine.io.volume import Geometry, Volume, VolumeMeta
from gcl_engine.models import build_unet

IDENTITY = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
MIRRORED_IJ = (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0)  # the benchmark's small CT
SWAPPED_IJ = (0, 1.0, 0, 1.0, 0, 0, 0, 0, 1.0)  # index i runs along y, j along x


@pytest.mark.parametrize("move", [InPlaneOrientation(*f) for f in itertools.product([False, True], repeat=3)])
def test_undo_inverts_apply_for_arrays_and_tensors(move):
    a = np.arange(2 * 3 * 5 * 7, dtype=np.float32).reshape(2, 3, 5, 7)
    assert np.array_equal(move.undo(move.apply(a)), a)
    assert move.apply(a).shape[-2:] == move.oriented_shape((5, 7))
    t = torch.from_numpy(a)
    assert torch.equal(move.undo(move.apply(t)), t)
    assert np.array_equal(move.apply(t).numpy(), move.apply(a))


def test_moves_read_from_the_direction():
    assert in_plane_orientation(IDENTITY, 0).is_identity
    assert in_plane_orientation(None, 0).is_identity
    assert in_plane_orientation(MIRRORED_IJ, 0) == InPlaneOrientation(False, True, True)
    assert in_plane_orientation(SWAPPED_IJ, 0) == InPlaneOrientation(True, False, False)
    # slicing along numpy axis 2 (ITK i, sagittal for identity): rows k (z), columns j (y), already canonical
    assert in_plane_orientation(IDENTITY, 2).is_identity
    # a slightly oblique scan takes the nearest canonical layout
    tilted = (-0.98, 0.17, 0, -0.17, -0.98, 0, 0, 0, 1.0)
    assert in_plane_orientation(tilted, 0) == InPlaneOrientation(False, True, True)


def _scan(seed: int = 0, shape=(6, 20, 24)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.normal(0, 200, shape).astype(np.float32)
    labels = np.zeros(shape, np.int64)
    labels[:, 3:9, 14:22] = 1  # an asymmetric structure: a flip shows
    labels[:, 12:18, 2:6] = 2
    image[labels == 1] += 300
    return image, labels


def _stored(image, labels, layout: str):
    """The same anatomy in another array layout, with the direction that says so."""
    if layout == "identity":
        return image, labels, IDENTITY
    if layout == "mirrored":
        return image[:, ::-1, ::-1].copy(), labels[:, ::-1, ::-1].copy(), MIRRORED_IJ
    return np.swapaxes(image, 1, 2).copy(), np.swapaxes(labels, 1, 2).copy(), SWAPPED_IJ


def _to_identity_layout(array, layout: str):
    if layout == "identity":
        return array
    if layout == "mirrored":
        return array[:, ::-1, ::-1]
    return np.swapaxes(array, 1, 2)


@pytest.mark.parametrize("layout", ["mirrored", "swapped"])
def test_another_layout_gives_the_network_the_same_slices(layout):
    image, labels = _scan()
    other_img, other_lab, direction = _stored(image, labels, layout)
    pre = PreprocessConfig(size=32)
    assert torch.equal(prepare_volume_slices(other_img, "CT", pre, direction),
                       prepare_volume_slices(image, "CT", pre, IDENTITY))
    assert torch.equal(prepare_label_slices(other_lab, pre, direction), prepare_label_slices(labels, pre, IDENTITY))
    stored = PreprocessConfig(size=32, orientation="stored")
    assert not torch.equal(prepare_volume_slices(other_img, "CT", stored, direction),
                           prepare_volume_slices(image, "CT", stored, IDENTITY))


def _volume(array, direction) -> Volume:
    return Volume(array, Geometry((1.0, 1.0, 2.0), (0.0, 0.0, 0.0), direction), VolumeMeta("mem", "v", "CT"))


@pytest.mark.parametrize("layout", ["mirrored", "swapped"])
def test_segmenter_predictions_land_on_each_files_own_grid(layout):
    torch.manual_seed(0)
    model = build_unet(ModelConfig(base_channels=8, levels=3), 3)
    seg = Segmenter(_TorchBackend(model, torch.device("cpu")), ["background", "a", "b"],
                    PreprocessConfig(size=32), PredictConfig(device="cpu"))
    image, labels = _scan(1)
    other_img, _, direction = _stored(image, labels, layout)
    reference = seg.predict(_volume(image, IDENTITY), keep_probabilities=True)
    other = seg.predict(_volume(other_img, direction), keep_probabilities=True)
    assert other.labels.shape == other_img.shape
    assert len(np.unique(reference.labels)) > 1  # not a constant map, so a wrong flip would show
    assert np.array_equal(_to_identity_layout(other.labels, layout), reference.labels)
    probs = np.stack([_to_identity_layout(p, layout) for p in other.probabilities])
    assert np.array_equal(probs, reference.probabilities)


def test_models_saved_before_the_option_keep_the_stored_layout():
    old = json.loads(to_json(PreprocessConfig(size=64)))
    del old["orientation"]
    assert from_saved_json(PreprocessConfig, json.dumps(old)).orientation == "stored"
    assert from_json(PreprocessConfig, json.dumps(old)).orientation == "canonical"  # a user's config file
    assert from_saved_json(PreprocessConfig, to_json(PreprocessConfig())).orientation == "canonical"
