"""Real files of other projects' test suites (the nibabel and pydicom wheels): scan, load and export them all.

0 tracebacks; every file is loaded, passed over by rule (sidecars, pixel files of a loaded header) or skipped
with a plain reason; no file is refused that SimpleITK or nibabel reads as a grey-level 3D/4D volume (RT dose
grids and DICOM SEG objects excepted on purpose); every loaded volume exports a mask with its geometry.
The wheels are fetched by the test set-up (``tests/corpus.py``), cached, and the test skips when offline.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from gcl_engine import api
from gcl_engine.io.nibabel_io import open_image
from tests.corpus import Offline, corpus_root, examine


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    salt = tmp_path_factory.mktemp("salt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GCL_STUDIO_SALT_DIR", str(salt))
        try:
            root = corpus_root()
        except Offline as exc:
            pytest.skip(str(exc))
        yield root, api.scan_folder(root)


def test_every_file_is_loaded_or_skipped_with_a_plain_reason(corpus):
    root, scan = corpus
    report = examine(root, scan)
    print("\n" + report.table())
    assert len(report.files) > 300 and len(scan.volumes) >= 40  # the corpus is really there
    assert report.unaccounted == [], report.unaccounted
    assert report.wrongly_refused == {}, report.wrongly_refused
    for path, reason in report.skipped.items():
        assert reason and "\n" not in reason and "0x" not in reason and ".cxx" not in reason, (path, reason)


def test_every_loaded_volume_exports_a_mask_on_its_geometry(corpus, tmp_path):
    _root, scan = corpus
    for i, record in enumerate(scan.volumes):
        volume = api.load(record)
        assert volume.array.shape == tuple(record.shape) and volume.meta.volume_id == record.volume_id
        assert np.isfinite(volume.array).all()
        mask = (volume.array > np.median(volume.array)).astype(np.uint8)
        out = api.export_nifti(mask, volume, tmp_path / f"{i:03d}_seg.nii.gz")
        back = api.load_volume(out)
        assert back.geometry.allclose(volume.geometry, tol=1e-4), record.source
        np.testing.assert_array_equal(back.array, mask)
        if record.kind == "nibabel" and not record.notes:  # exact against nibabel's own placement
            source = open_image(Path(record.source)).affine
            np.testing.assert_allclose(nib.load(str(out)).affine, source, atol=1e-3, err_msg=record.source)
