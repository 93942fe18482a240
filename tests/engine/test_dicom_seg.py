"""DICOM SEG export: written with highdicom, read back with highdicom, compared voxel for voxel in patient space
with the NIfTI export of the same labels (oblique sample included); references, colours, refusals, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from gcl_engine import api
from gcl_engine.cli import main
from gcl_engine.io.dicom_seg import export_dicom_seg
from gcl_engine.io.sample_data import sample_paths
from gcl_engine.io.writers import label_colour
from tests.engine.seg_readback import seg_on_grid
from tests.reliability.dicom_factory import write_series

TINY = ["--size", "32", "--base-channels", "4", "--device", "cpu", "--threads", "1"]


def _shapes(shape: tuple[int, int, int]) -> np.ndarray:
    """Two classes with indices 2 and 5 (not contiguous), off-centre, different on every slice."""
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    labels = np.zeros(shape, np.uint8)
    labels[((j - shape[1] * 0.4) ** 2 + (i - shape[2] * 0.55) ** 2) < (shape[1] * 0.2 + k) ** 2] = 2
    labels[(np.abs(j - shape[1] * 0.7) < 4) & (i < shape[2] // 3) & (k % 3 != 0)] = 5
    return labels


def _assert_same_voxels(seg_path, nifti_path, names):
    nifti = api.load_volume(nifti_path)
    back = seg_on_grid(seg_path, nifti, names)
    # The SEG's frames sit at the source images' own positions; the NIfTI grid is the reader's evenly spaced fit
    # of them. On the oblique sample (slice steps 6.96-7.07 mm) they differ by 0.07 voxel at most: the nearest
    # voxel is never in doubt.
    assert back.worst_index_error < 0.25, f"SEG pixels {back.worst_index_error:.3f} voxel off the NIfTI grid"
    np.testing.assert_array_equal(back.labels, nifti.array)
    return back


@pytest.mark.parametrize("sample", ["oblique_dicom", "synthetic"])
def test_seg_matches_the_nifti_export_in_patient_space(sample, tmp_path):
    folder = sample_paths()["oblique_dicom"] if sample == "oblique_dicom" else write_series(tmp_path / "series")
    volume = api.load_volume(folder)
    labels = _shapes(volume.shape)
    names = {0: "background", 2: "liver", 5: "inferior vena cava"}
    nifti = api.export_nifti(labels, volume, tmp_path / "mask.nii.gz", names)
    seg_path = export_dicom_seg(labels, volume, tmp_path / "mask_seg.dcm", names)
    back = _assert_same_voxels(seg_path, nifti, names)
    assert back.segments == {1: "liver", 2: "inferior vena cava"}  # segment numbers 1..N, labels from the classes


def test_seg_references_the_source_series_and_carries_names_colours_codes(tmp_path):
    folder = write_series(tmp_path / "series", n=6)
    volume = api.load_volume(folder)
    labels = _shapes(volume.shape)
    seg_path = export_dicom_seg(labels, volume, tmp_path / "s.dcm", {2: "liver", 5: "lesion"},
                                    colours={2: (10, 200, 30)}, model_sha256="ab" * 32)
    seg = pydicom.dcmread(seg_path)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]
    assert seg.Modality == "SEG" and seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    [series] = seg.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence} == {
        s.SOPInstanceUID for s in sources}
    liver, lesion = seg.SegmentSequence
    assert (liver.SegmentLabel, lesion.SegmentLabel) == ("liver", "lesion")
    assert liver.SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"  # SNOMED liver
    assert lesion.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"  # no code: generic, label kept
    assert liver.SegmentAlgorithmType == "AUTOMATIC"
    import highdicom as hd

    rgb = [hd.color.CIELabColor.from_dicom_value(s.RecommendedDisplayCIELabValue).to_rgb() for s in (liver, lesion)]
    assert np.abs(np.subtract(rgb[0], (10, 200, 30))).max() <= 2  # the class list's colour
    assert np.abs(np.subtract(rgb[1], label_colour(5))).max() <= 2  # else the sidecar palette


def test_painted_labels_are_manual_segments(tmp_path):
    volume = api.load_volume(write_series(tmp_path / "series", n=5))
    seg_path = export_dicom_seg(_shapes(volume.shape), volume, tmp_path / "s.dcm", ["background", "a", "b"])
    assert {s.SegmentAlgorithmType for s in pydicom.dcmread(seg_path).SegmentSequence} == {"MANUAL"}


def test_sources_a_seg_cannot_reference_are_refused_with_the_reason(tmp_path):
    paths = sample_paths()
    ct = api.load_volume(paths["ct"])
    with pytest.raises(api.InputError, match="DICOM source images"):
        export_dicom_seg(np.zeros(ct.shape, np.uint8), ct, tmp_path / "a.dcm", ["background", "x"])
    no_uid = api.load_volume(paths["dicom_ct"])  # the TotalSegmentator CT: empty Series Instance UID
    with pytest.raises(api.InputError, match="no Series Instance UID"):
        export_dicom_seg(np.ones(no_uid.shape, np.uint8), no_uid, tmp_path / "b.dcm", ["background", "x"])
    cine = api.load_volume(paths["cardiac_cine"])
    with pytest.raises(api.InputError, match="multi-frame"):
        export_dicom_seg(np.ones(cine.shape, np.uint8), cine, tmp_path / "c.dcm", ["background", "x"])
    volume = api.load_volume(write_series(tmp_path / "series", n=5))
    with pytest.raises(api.OutputError, match=".dcm"):
        export_dicom_seg(np.ones(volume.shape, np.uint8), volume, tmp_path / "d.nii.gz", ["background", "x"])
    assert not list(tmp_path.glob("*.dcm"))  # nothing half-written


def test_cli_predict_writes_a_seg_equal_to_its_nifti(tmp_path, capsys):
    folder = sample_paths()["oblique_dicom"]
    volume = api.load_volume(folder)
    tissue = (volume.array > np.percentile(volume.array, 60)).astype(np.uint8)
    labels = api.export_nifti(tissue, volume, tmp_path / "tissue.nii.gz", ["background", "brain"])
    model = tmp_path / "model.pt"
    assert main(["finetune", "--image", str(folder), "--labels", str(labels), "--slices", "6,9,12", "--out",
                 str(model), "--steps", "25", "--class-names", "background,brain", *TINY]) == 0
    nifti, seg_path = tmp_path / "pred.nii.gz", tmp_path / "pred_seg.dcm"
    assert main(["predict", "--model", str(model), "--image", str(folder), "--out", str(nifti)]) == 0
    assert main(["predict", "--model", str(model), "--image", str(folder), "--out", str(seg_path),
                 "--format", "dicom-seg"]) == 0
    names = {int(k): v for k, v in json.loads((tmp_path / "pred.labels.json").read_text()).items()}
    assert api.load_volume(nifti).array.any(), "the model predicted nothing: the comparison would be empty"
    back = _assert_same_voxels(seg_path, nifti, names)
    assert back.segments == {1: "brain"} and back.n_frames > 0
    # a NIfTI scan has no series to reference: reported with the reason, the exit status says it
    assert main(["predict", "--model", str(model), "--image", str(sample_paths()["ct"]), "--out",
                 str(tmp_path / "ct_seg.dcm")]) == 1
    assert "DICOM source images" in capsys.readouterr().err and not (tmp_path / "ct_seg.dcm").exists()
    assert main(["predict", "--model", str(model), "--image", str(folder), "--out", str(tmp_path / "x.nii.gz"),
                 "--format", "dicom-seg"]) == 2
