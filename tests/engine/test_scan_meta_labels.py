"""Folder scan with slice cache, meta-label table, sidecar CSV, sampler."""

from __future__ import annotations

import numpy as np

from gcl_engine import api
from gcl_engine.config import PreprocessConfig
from gcl_engine.data.meta_labels import UNKNOWN_BASE, SliceRecord, build_table, read_sidecar_csv
from gcl_engine.data.samplers import PartitionSampler
from gcl_engine.data.slice_cache import SliceCache
from tests.engine.synthetic import make_folder


def test_scan_caches_slices_and_reuses_them(tmp_path):
    scans, _, _ = make_folder(tmp_path, n=2, with_labels=False)
    pre = PreprocessConfig(size=32)
    first = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=pre)
    files = sorted((tmp_path / "cache").glob("*.npy"))
    assert len(files) == 2
    mtimes = [f.stat().st_mtime_ns for f in files]
    second = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=pre)
    assert [f.stat().st_mtime_ns for f in sorted((tmp_path / "cache").glob("*.npy"))] == mtimes  # reused
    assert [v.cache_key for v in first.volumes] == [v.cache_key for v in second.volumes]
    cached = SliceCache(tmp_path / "cache").get(first.volumes[0].cache_key)
    assert cached.shape == (16, 32, 32) and cached.dtype == np.float16
    other = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=PreprocessConfig(size=48))
    assert other.volumes[0].cache_key != first.volumes[0].cache_key  # a new resolution is a new entry


def test_a_damaged_cache_entry_is_rebuilt(tmp_path):
    scans, _, _ = make_folder(tmp_path, n=1, with_labels=False)
    pre = PreprocessConfig(size=32)
    result = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=pre)
    path = SliceCache(tmp_path / "cache").path(result.volumes[0].cache_key)
    path.write_bytes(b"half written")
    api.scan_folder(scans, cache=tmp_path / "cache", preprocess=pre)
    assert np.load(path, mmap_mode="r").shape == (16, 32, 32)


def test_sample_scans_give_the_spec_meta_labels():
    result = api.scan_folder(api.sample_paths()["scans"])
    assert len(result.volumes) == 5 and not result.skipped
    labels = result.meta_labels
    assert labels["subject"].usable and labels["position"].usable
    assert labels["phase"].usable and labels["phase"].n_values == 16  # the cardiac cine's 16 phases
    assert labels["phase"].known_slices == 16 and labels["phase"].total_slices == 105  # the cine's slices only
    assert labels["series"].usable


def _records():
    return [SliceRecord("a", "a.nii.gz", 8, "s1", "CT|"), SliceRecord("b", "b.nii.gz", 4, "s1", "MR|", time_index=1),
            SliceRecord("c", "c.nii.gz", 4, "s2", "CT|", time_index=0)]


def test_table_positions_subjects_and_phases():
    t = build_table(_records(), n_partitions=4, position_within="global")
    assert t.partition[:8].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert t.labels["subject"].tolist() == [0] * 12 + [1] * 4
    assert (t.labels["phase"][:8] >= UNKNOWN_BASE).all() and t.labels["phase"][8:12].tolist() == [1] * 4
    summaries = t.summaries()
    assert summaries["phase"].n_values == 2 and summaries["phase"].usable
    assert (summaries["phase"].known_slices, summaries["phase"].total_slices) == (8, 16)  # a.nii.gz has none
    assert summaries["subject"].known_slices == 16
    series = build_table(_records(), n_partitions=4, position_within="series").labels["position"]
    assert series[0] != series[8]  # the same bin in a CT and an MR series are different positions


def test_sidecar_csv_adds_user_meta_labels(tmp_path):
    csv = tmp_path / "meta.csv"
    csv.write_text("file,scanner,site\na.nii.gz,GE,x\nb.nii.gz,Siemens,x\n")
    t = build_table(_records(), sidecar=read_sidecar_csv(csv))
    assert set(t.labels) >= {"csv:scanner", "csv:site"}
    assert t.summaries()["csv:scanner"].usable and not t.summaries()["csv:site"].usable


def test_sampler_takes_one_slice_per_partition_and_is_repeatable():
    t = build_table(_records(), n_partitions=4)
    sampler = PartitionSampler(t, volumes_per_batch=2, seed=3)
    rows = sampler.batch(7).rows
    assert len(rows) == 8
    for v in range(2):
        assert sorted(t.partition[rows[v * 4:(v + 1) * 4]].tolist()) == [0, 1, 2, 3]
    assert np.array_equal(rows, sampler.batch(7).rows)


def test_a_cache_hit_reads_no_pixels(tmp_path, monkeypatch):
    scans, _, _ = make_folder(tmp_path, n=2, with_labels=False)
    pre = PreprocessConfig(size=32)
    first = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=pre)
    import gcl_engine.data.scan as scan_module

    def no_reading(source):
        raise AssertionError(f"{source.path} was read again on a cache hit")

    monkeypatch.setattr(scan_module, "load_volumes", no_reading)
    second = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=pre)
    assert [v.volume_id for v in second.volumes] == [v.volume_id for v in first.volumes]
    assert second.volumes == first.volumes and second.meta_labels.keys() == first.meta_labels.keys()
    (scans / "case00_ct.nii.gz").touch()  # a changed file (new mtime) is read again
    monkeypatch.undo()
    third = api.scan_folder(scans, cache=tmp_path / "cache", preprocess=pre)
    assert len(third.volumes) == 2
