"""Messages say in plain words what is wrong with which file; ITK's console output goes to the log."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest

from gcl_engine import api
from gcl_engine.io.itk_messages import clean_line, plain_reason


def _assert_plain(err: api.InputError, name: str) -> None:
    message = str(err)
    assert name in message and "\n" not in message
    for noise in ("0x", ".cxx", "ImageIO", "sitk::", "ERROR"):
        assert noise not in err.reason, (noise, message)


@pytest.mark.parametrize("name, content, words", [
    ("damaged.mnc", b"\x89HDF\r\n\x1a\n" + b"garbage" * 20, "cannot be opened"),
    ("notes.v", b"neither ECAT nor anything" * 10, "cannot be read"),
    ("random.bin", bytes(range(256)) * 8, "not a medical image"),
    ("surface.gii", b"<?xml version='1.0'?><GIFTI/>", "GIFTI surface"),
])
def test_unreadable_files_get_plain_reasons(tmp_path, name, content, words):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(api.InputError, match=words) as err:
        api.load_volume(tmp_path / name)
    _assert_plain(err.value, name)
    [skipped] = api.scan_folder(tmp_path).skipped
    assert words in skipped.reason and "0x" not in skipped.reason


def test_itk_text_is_cleaned():
    raw = RuntimeError("Exception thrown in SimpleITK ImageFileReader_Execute: /tmp/SimpleITK-build/ITK/x.cxx:97:\n"
                       "sitk::ERROR: NiftiImageIO (0x55d0c0ffee00): Strange thing in /data/scan.nii")
    assert clean_line(str(raw), "/data/scan.nii") == "Strange thing in scan.nii"
    assert plain_reason(RuntimeError("MINCImageIO(0x5a): Could not open file")).startswith("cannot be opened")


def test_itk_warnings_go_to_the_log_not_the_terminal(tmp_path, capfd, caplog):
    """An Analyze pair makes ITK warn that the format is deprecated; the user's terminal stays clean."""
    nib.save(nib.AnalyzeImage(np.arange(60, dtype=np.int16).reshape(3, 4, 5), np.eye(4)), str(tmp_path / "old.hdr"))
    damaged = tmp_path / "damaged.mnc"
    damaged.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 20)  # libminc and HDF5 print on their own
    with caplog.at_level(logging.DEBUG, logger="gcl_engine"):
        scan = api.scan_folder(tmp_path)
    assert [v.volume_id for v in scan.volumes] == ["old"] and [s.path for s in scan.skipped] == [str(damaged)]
    out, err = capfd.readouterr()
    assert err == "" and out == ""
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("gcl_engine.io"))
    assert "deprecated" in logged and "damaged.mnc" in logged
    assert "0x" not in logged
