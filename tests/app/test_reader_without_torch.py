"""The napari reader and writer open and save scans without loading torch (or any Qt binding).

Run in a fresh interpreter: this test process has torch and Qt loaded already.
"""

from __future__ import annotations

import subprocess
import sys

from tests.app.synthetic import synthetic_ct, write_scan

CODE = """
import sys
import numpy as np
from gcl_app.napari_plugin import reader, writer
[(data, kwargs, kind)] = reader.get_reader(sys.argv[1])(sys.argv[1])
labels = (np.asarray(data) > 0).astype(np.uint8)
writer.write_labels(sys.argv[2], labels, {"metadata": kwargs["metadata"], "affine": kwargs["affine"]})
[(back, _kwargs, _kind)] = reader.read_scans(sys.argv[2])
assert kind == "image" and np.array_equal(np.asarray(back), labels)
loaded = [m for m in ("torch", "monai", "qtpy", "PySide6", "PyQt5", "PyQt6", "superqt", "magicgui") if m in sys.modules]
print(loaded)
sys.exit(1 if loaded else 0)
"""


def test_reading_and_writing_a_nifti_never_imports_torch(tmp_path):
    scan = write_scan(tmp_path / "ct.nii.gz", synthetic_ct(1))
    done = subprocess.run([sys.executable, "-c", CODE, str(scan), str(tmp_path / "mask.nii.gz")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert (tmp_path / "mask.nii.gz").is_file()
