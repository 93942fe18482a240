"""A scan with a cache keeps its discovery under the folder's signature: no header is read twice, and any
change to the folder discovers it again."""

from __future__ import annotations

import os
import shutil

from gcl_engine import api
from gcl_engine.config import PreprocessConfig
from gcl_engine.data import scan
from tests.engine.synthetic import make_folder

PRE = PreprocessConfig(size=16)


def test_an_unchanged_folder_is_not_discovered_again(tmp_path, monkeypatch):
    scans, images, _ = make_folder(tmp_path, n=2, with_labels=False)
    (scans / "broken.nii.gz").write_bytes(b"not a scan at all")
    calls = []
    real = scan.discover
    monkeypatch.setattr(scan, "discover", lambda *a, **k: calls.append(a) or real(*a, **k))
    first = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=PRE)
    second = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=PRE)
    assert len(calls) == 1
    assert [v.source for v in second.volumes] == [v.source for v in first.volumes] and len(first.volumes) == 2
    assert [(s.path, s.reason) for s in second.skipped] == [(s.path, s.reason) for s in first.skipped]
    assert second.skipped  # the broken file's reason came back from the cache too
    api.scan_folder(scans, preprocess=PRE)  # without a cache nothing is kept: discovered
    assert len(calls) == 2

    shutil.copy(images[0], scans / "copy.nii.gz")  # a new file
    added = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=PRE)
    assert len(calls) == 3 and len(added.volumes) == 3
    st = os.stat(images[1])
    os.utime(images[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a touched file
    api.scan_folder(scans, cache=tmp_path / "cache", preprocess=PRE)
    assert len(calls) == 4
    (scans / "copy.nii.gz").unlink()  # a removed file
    removed = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=PRE)
    assert len(calls) == 5 and len(removed.volumes) == 2


def test_a_damaged_discovery_record_is_rebuilt(tmp_path):
    scans, _, _ = make_folder(tmp_path, n=1, with_labels=False)
    api.scan_folder(scans, cache=tmp_path / "cache", preprocess=PRE)
    for manifest in (tmp_path / "cache").glob("*.json"):
        manifest.write_text("[{\"sources\": 3}]", encoding="utf-8")
    again = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=PRE)
    assert len(again.volumes) == 1


def test_a_dicom_header_is_read_once_per_file_version(tmp_path, monkeypatch):
    import numpy as np

    from gcl_engine.io import dicom
    from tests.engine.synthetic import write_dicom_series

    files = write_dicom_series(tmp_path / "series", np.zeros((3, 8, 8), np.int16), "1.2.3.4", 1, "s")
    reads = []
    real = dicom._read_header
    monkeypatch.setattr(dicom, "_read_header", lambda p: reads.append(p) or real(p))
    dicom._remembered_header.cache_clear()
    first = [dicom.read_header(str(f)) for f in files]
    again = [dicom.read_header(str(f)) for f in files]
    assert len(reads) == 3 and again == first and first[0].size == (8, 8, 1)
    st = os.stat(files[0])
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a changed file is read again
    dicom.read_header(str(files[0]))
    assert len(reads) == 4
    monkeypatch.setattr(dicom, "machine_salt", lambda: b"another machine's salt")  # its patient hash differs
    dicom.read_header(str(files[0]))
    assert len(reads) == 5
