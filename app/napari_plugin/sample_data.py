"""napari sample data: the bundled abdominal CT and its reference labels (real scans, see LICENSES.md)."""

from __future__ import annotations

from gcl_app.layers import LayerDataTuple, image_layer_data, labels_layer_data
from gcl_app.project import read_label_names

from gcl_engine import api


def sample_ct() -> list[LayerDataTuple]:
    from gcl_app.napari_plugin.reader_preference import claim_scan_patterns

    claim_scan_patterns()  # the user's next File > Open of a scan reads it in patient space, without asking
    paths = api.sample_paths()
    image = api.load_volume(paths["ct"])
    labels = api.load_volume(paths["ct_labels"])
    names = read_label_names(paths["ct_labels"]) or {}
    reference = labels_layer_data(labels.array, labels, names, name="reference labels", role="reference")
    reference[1]["visible"] = False  # the user paints their own; the reference is for comparing
    reference[1]["opacity"] = 0.5
    return [image_layer_data(image, name="sample CT"), reference]
