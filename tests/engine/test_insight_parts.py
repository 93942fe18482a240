"""The insight tools' parts on hand-made data: conflicts, fit-check calibration, projection, map, charts, probe."""

from __future__ import annotations

import numpy as np
import pytest

from gcl_engine.insight.conflicts import conflict_matrices, cosine_series
from gcl_engine.insight.fit_check import FitSettings, calibrate, holdout_folds, knn_distance, unit
from gcl_engine.insight.folder_map import read_map_csv, write_map_csv
from gcl_engine.insight.map_image import render_map
from gcl_engine.insight.pool import select_rows
from gcl_engine.insight.probe import probe_label
from gcl_engine.insight.projection import project_2d, resolve_method
from gcl_engine.insight.results import FolderMap
from gcl_engine.insight.svg_charts import line_chart, nice_ticks


def test_conflict_matrix_counts_the_steps_with_a_negative_cosine_and_says_it_in_words():
    rows = [{"step": s, "img/cos/subject~position": c, "img/cos/subject~series": 0.3,
             "img/cos/position~series": 0.1} for s, c in enumerate([-0.2, 0.1, -0.4, -0.1], start=1)]
    rows.append({"step": 5, "loss": 1.0})  # a row without cosines changes nothing
    matrix = conflict_matrices(rows)["img"]
    assert matrix.labels == ["subject", "position", "series"]
    i, j = 0, 1
    assert matrix.conflict_rate[i, j] == matrix.conflict_rate[j, i] == pytest.approx(0.75)
    assert matrix.cosine[i, j] == pytest.approx(np.mean([-0.2, 0.1, -0.4, -0.1]))
    assert matrix.conflict_rate[0, 2] == 0 and matrix.steps[0, 1] == 4
    assert "subject fights position in 75% of steps" in matrix.sentence()
    assert cosine_series(rows, "img")["subject~position"] == ([1, 2, 3, 4], [-0.2, 0.1, -0.4, -0.1])


def test_conflict_sentence_without_fights_and_without_pairs():
    calm = conflict_matrices([{"step": 1, "pix/cos/a~b": 0.5}])["pix"]
    assert "no pair" in calm.sentence() and "pixel branch" in calm.sentence()
    assert conflict_matrices([{"step": 1, "img/conflict_rate": 0.3}]) == {}


def test_folds_take_whole_volumes_when_there_are_five_and_blocks_otherwise():
    volume = np.repeat(np.arange(6), 10)
    fold, kind = holdout_folds(volume, 5, seed=0)
    assert kind == "volumes" and sorted(np.unique(fold)) == [0, 1, 2, 3, 4]
    assert all(len(np.unique(fold[volume == v])) == 1 for v in range(6))  # a volume never spans two folds
    few = np.repeat(np.arange(2), 20)
    fold, kind = holdout_folds(few, 5, seed=0)
    assert kind == "blocks"
    for v in (0, 1):  # five contiguous blocks of four slices per volume
        f = fold[few == v]
        assert sorted(np.bincount(f, minlength=5)) == [4] * 5 and (np.diff(f) != 0).sum() <= 5


def _cluster(rng, centre, n, spread=0.05):
    return centre + spread * rng.normal(size=(n, len(centre)))


def test_calibrated_threshold_passes_new_scans_of_the_pool_and_flags_others():
    rng = np.random.default_rng(0)
    dim = 16
    a, b, far = (rng.normal(size=dim) for _ in range(3))
    pool = np.concatenate([_cluster(rng, a, 30) for _ in range(3)] + [_cluster(rng, b, 30) for _ in range(3)])
    volume = np.repeat(np.arange(6), 30)
    ref = calibrate(pool.astype(np.float32), volume, FitSettings(k=3))
    assert ref.holdout == "volumes" and ref.threshold > 0 and len(ref.reference) == len(pool)
    assert len(ref.holdout_scores) == len(pool)

    def scan_score(vectors):
        return float(np.median(knn_distance(unit(vectors, ref.mean), ref.reference, 3)))

    assert scan_score(_cluster(rng, a, 20)) <= ref.threshold
    assert scan_score(_cluster(rng, b, 20)) <= ref.threshold
    assert scan_score(_cluster(rng, far, 20)) > ref.threshold


def test_knn_distance_is_the_mean_distance_to_the_k_nearest():
    reference = np.eye(3)
    query = np.array([[1.0, 0.0, 0.0]])
    assert knn_distance(query, reference, 1)[0] == pytest.approx(0.0)
    assert knn_distance(query, reference, 2)[0] == pytest.approx(0.5)
    assert knn_distance(query, reference, 10)[0] == pytest.approx(2 / 3)  # k is capped at the reference size


def test_select_rows_spreads_over_volumes_and_keeps_every_volume():
    from gcl_engine.data.meta_labels import SliceRecord, build_table

    table = build_table([SliceRecord(f"v{i}", f"v{i}", n, f"s{i}", "CT|x") for i, n in enumerate([100, 50, 1])])
    assert len(select_rows(table, 0)) == 151
    rows = select_rows(table, 30)
    counts = np.bincount(table.volume[rows], minlength=3)
    assert 25 <= counts.sum() <= 35 and counts.min() >= 1 and counts[0] > counts[1]


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projection_is_2d_and_deterministic(method):
    rng = np.random.default_rng(1)
    x = np.concatenate([_cluster(rng, np.full(8, 1.0), 20), _cluster(rng, np.full(8, -1.0), 20)])
    xy, used = project_2d(x, method, seed=0)
    again, _ = project_2d(x, method, seed=0)
    assert used == method and xy.shape == (40, 2) and np.allclose(xy, again)
    first, second = xy[:20].mean(0), xy[20:].mean(0)
    assert np.linalg.norm(first - second) > 3 * max(xy[:20].std(0).max(), xy[20:].std(0).max())


def test_projection_auto_and_degenerate_inputs():
    assert resolve_method("auto", 100) == "tsne" and resolve_method("auto", 10_000) == "pca"
    assert resolve_method("tsne", 3) == "pca"
    assert project_2d(np.zeros((0, 4)))[0].shape == (0, 2)
    assert np.allclose(project_2d(np.ones((7, 4)))[0], 0)


def _tiny_map() -> FolderMap:
    xy = np.array([[0, 0], [1, 0], [0, 1], [5, 5]], dtype=np.float32)
    return FolderMap(["a", "a", "b", "b"], ["/s/a.nii.gz", "/s/a.nii.gz", "/s/b,1.nii.gz", "/s/b,1.nii.gz"],
                     np.array([0, 3, 1, 2]), xy, {"volume": ["a", "a", "b", "b"],
                                                  "position": ["1/4", "2/4", "1/4", "unknown"]})


def test_map_csv_round_trip(tmp_path):
    fmap = _tiny_map()
    fmap.method, fmap.step = "tsne", 7
    back = read_map_csv(write_map_csv(fmap, tmp_path / "map.csv"))
    assert back.volume_id == fmap.volume_id and back.source == fmap.source  # the comma is quoted
    assert back.slice.tolist() == [0, 3, 1, 2] and np.allclose(back.xy, fmap.xy)
    assert back.labels == fmap.labels and back.colour_choices() == ["volume", "position"]
    assert (back.method, back.step) == ("tsne", 7)


def test_map_csv_that_is_not_a_map_is_refused(tmp_path):
    from gcl_engine.errors import InputError

    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a GCL Studio map"):
        read_map_csv(bad)


def test_rendered_map_has_each_point_where_a_click_finds_it():
    fmap = _tiny_map()
    picture = render_map(fmap, "position", 500, 400)
    assert picture.rgba.shape == (400, 500, 4) and picture.colours["unknown"] == "#7f7f7f"
    for i, (col, row) in enumerate(picture.pixels):
        assert picture.nearest(col + 2, row - 1) == i
        drawn = picture.rgba[int(round(row)), int(round(col)), :3]
        assert "#" + bytes(drawn.astype(np.uint8)).hex() == picture.colours[fmap.labels["position"][i]]
    assert picture.nearest(-100, -100) is None
    assert picture.png_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert render_map(fmap, "no such column").colours.keys() == {"a", "b"}  # falls back to the volume


def test_line_chart_is_svg_with_one_line_per_series():
    svg = line_chart({"subject": ([1, 2, 3], [3.0, 2.0, 1.0]), "position": ([1, 2], [1.0, 0.5])}, "loss", "loss")
    assert svg.startswith("<svg") and svg.count("<polyline") == 2 and "subject" in svg
    assert "nothing logged" in line_chart({}, "empty", "y")
    assert nice_ticks(0, 1) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_probe_reads_a_label_the_vectors_encode_and_says_when_it_cannot():
    rng = np.random.default_rng(0)
    volume = np.repeat(np.arange(6), 20)
    values = ["top" if i % 20 < 10 else "bottom" for i in range(120)]
    vectors = np.array([[1.0, 0.0] if v == "top" else [0.0, 1.0] for v in values]) + 0.1 * rng.normal(size=(120, 2))
    result = probe_label(vectors, values, volume, "position")
    assert result.accuracy > 0.9 and result.baseline == pytest.approx(0.5, abs=0.2)
    subjects = [f"subject {v}" for v in volume]  # one volume per subject: no value recurs
    assert probe_label(vectors, subjects, volume, "subject").accuracy is None
