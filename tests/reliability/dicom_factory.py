"""Synthetic DICOM series carrying known patient identifiers, for the privacy tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

# Long enough not to occur by chance: a 4-digit "4711" once turned up inside a hex hash (the salted subject
# hash or a cache key, random per machine) in a cache file, and 3 letters can occur in any binary file.
PATIENT = {"0010|0010": "Doefield^Janelle", "0010|0020": "PID-47110815-XYZ", "0010|0030": "19700101"}
SECRETS = ("Doefield", "Janelle", "PID-47110815-XYZ", "47110815", "19700101")


def write_series(folder: Path, n: int = 12, size: int = 40, seed: int = 0, series_uid: str = "1.2.826.0.1.99.1",
                 patient: dict[str, str] | None = None) -> Path:
    """A CT-like axial series with identifiers in every header (PatientName, PatientID, BirthDate)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    body = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size * 0.4) ** 2
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(n):
        organ = ((yy - size / 2 + 3) ** 2 + (xx - size / 2 - 4) ** 2) < (4 + k % 5) ** 2
        pixels = np.where(body, 40, -1000) + 80 * organ + rng.normal(0, 10, (size, size))
        image = sitk.GetImageFromArray(pixels.astype(np.int16))
        image.SetSpacing((0.9, 0.9))
        tags = {**(patient or PATIENT), "0008|0060": "CT", "0008|103e": "abdomen", "0020|000d": series_uid + ".0",
                "0020|000e": series_uid, "0020|0032": f"0\\0\\{k * 3.0}", "0020|0037": "1\\0\\0\\0\\1\\0",
                "0020|0013": str(k + 1), "0018|0050": "3.0", "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
                "0008|0018": f"{series_uid}.{k + 1}", "0020|0052": series_uid + ".9"}
        for tag, value in tags.items():
            image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice_{k:03d}.dcm"))
        writer.Execute(image)
    return folder
