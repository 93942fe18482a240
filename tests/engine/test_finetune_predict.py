"""Few-shot fine-tuning, whole-volume prediction (torch and onnxruntime), ONNX export, and their bad inputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from gcl_engine import api
from gcl_engine.checkpoint import load_checkpoint
from gcl_engine.config import FinetuneConfig, PretrainConfig
from gcl_engine.events import Preview
from gcl_engine.inference.postprocess import keep_largest_component
from tests.engine.synthetic import TINY_MODEL, TINY_PRE, make_folder, phantom, write

NAMES = ("background", "liver", "vessel")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    scans, images, labels = make_folder(root, n=3)
    run = api.pretrain(PretrainConfig(folder=str(scans), out=str(root / "run"), steps=3, volumes_per_batch=2,
                                      preprocess=TINY_PRE, model=TINY_MODEL, device="cpu", threads=1))
    return root, images, labels, run.checkpoint


def ft_config(data, out: Path, **kw) -> FinetuneConfig:
    root, images, labels, ckpt = data
    base = FinetuneConfig(image=str(images[0]), labels=str(labels[0]), out=str(out), pretrained=ckpt, steps=6,
                          batch_size=2, slices=(3, 8, 12), class_names=NAMES, preview_every=3, preview_slices=(5,),
                          preprocess=TINY_PRE, model=TINY_MODEL, device="cpu", threads=1)
    return dataclasses.replace(base, **kw)


def test_finetune_from_pretrained_emits_previews_and_saves_a_model(data, tmp_path):
    events = []
    result = api.finetune(ft_config(data, tmp_path / "m.pt"), on_event=events.append)
    previews = [e for e in events if isinstance(e, Preview)]
    assert [p.step for p in previews] == [3, 6]
    assert previews[0].slices == [5] and previews[0].masks[0].shape == (40, 40)  # source in-plane shape
    state = load_checkpoint(result.model_path, "gcl-segmenter")
    assert state["class_names"] == list(NAMES) and state["annotated_slices"] == [3, 8, 12]
    assert result.annotated_slices == [3, 8, 12]


def test_pretrained_encoder_is_loaded(data, tmp_path):
    result = api.finetune(ft_config(data, tmp_path / "m.pt", steps=1, lr_encoder=1e-9, lr_decoder=1e-9))
    pre = load_checkpoint(data[3])["model"]
    got = load_checkpoint(result.model_path)["model"]
    key = next(k for k in got if k.startswith("encoder."))
    assert np.allclose(got[key].numpy(), pre[key].numpy(), atol=1e-6)


def test_a_frozen_encoder_keeps_its_pretrained_weights_while_the_decoder_learns(data, tmp_path):
    pre = load_checkpoint(data[3])["model"]
    frozen = load_checkpoint(api.finetune(ft_config(data, tmp_path / "f.pt", freeze_encoder_steps=6)).model_path)
    thawed = load_checkpoint(api.finetune(ft_config(data, tmp_path / "t.pt", freeze_encoder_steps=3)).model_path)
    enc = [k for k, v in frozen["model"].items() if k.startswith("encoder.") and k in pre and v.is_floating_point()]
    assert enc and all(np.array_equal(frozen["model"][k].numpy(), pre[k].numpy()) for k in enc)
    assert any(not np.allclose(thawed["model"][k].numpy(), pre[k].numpy()) for k in enc)
    dec = [k for k in frozen["model"] if k.startswith("decoder.")]
    initial = load_checkpoint(api.finetune(ft_config(data, tmp_path / "i.pt", steps=1, lr_decoder=1e-12,
                                                     freeze_encoder_steps=1)).model_path)
    assert any(not np.allclose(frozen["model"][k].numpy(), initial["model"][k].numpy()) for k in dec)


def test_only_annotated_slices_are_used_and_empty_ones_are_found(data, tmp_path):
    root, images, labels, _ = data
    lab = api.load_volume(labels[0])
    sparse = np.zeros_like(lab.array)
    sparse[[4, 9]] = lab.array[[4, 9]]
    path = api.export_nifti(sparse, lab, tmp_path / "sparse.nii.gz")
    result = api.finetune(ft_config(data, tmp_path / "m.pt", labels=str(path), slices=None, steps=1))
    assert result.annotated_slices == [4, 9]


def test_continuing_from_a_model_adds_steps(data, tmp_path):
    first = api.finetune(ft_config(data, tmp_path / "a.pt", steps=2))
    second = api.finetune(ft_config(data, tmp_path / "b.pt", steps=3, init_model=first.model_path))
    assert load_checkpoint(second.model_path)["steps"] == 5


@pytest.mark.parametrize("case, message", [
    ("shape", "does not match image shape"),
    ("geometry", "geometry"),
    ("empty", "no annotated slice"),
    ("class", "absent from the class list"),
    ("slice_range", "outside"),
])
def test_bad_label_input_is_a_clear_error(data, tmp_path, case, message):
    root, images, labels, _ = data
    lab = api.load_volume(labels[0])
    kw = {}
    if case == "shape":
        kw["labels"] = str(write(lab.array[:, :30], tmp_path / "small.nii.gz"))
    elif case == "geometry":
        kw["labels"] = str(write(lab.array, tmp_path / "moved.nii.gz", origin=(0.0, 0.0, 0.0)))
    elif case == "empty":
        kw.update(labels=str(write(np.zeros_like(lab.array), tmp_path / "zero.nii.gz")), slices=None)
    elif case == "class":
        kw["class_names"] = ("background", "liver")
    else:
        kw["slices"] = (3, 99)
    with pytest.raises(api.InputError, match=message):
        api.finetune(ft_config(data, tmp_path / "m.pt", **kw))


@pytest.fixture(scope="module")
def model(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m.pt"
    return api.finetune(ft_config(data, out, steps=8)).model_path


def test_segmenter_predicts_in_source_geometry_and_exports(data, model, tmp_path):
    image = api.load_volume(data[1][1])
    pred = api.Segmenter.load(model, api.PredictConfig(device="cpu")).predict(image, keep_probabilities=True)
    assert pred.labels.shape == image.array.shape and pred.labels.dtype == np.uint8
    assert pred.probabilities.shape == (3, *image.array.shape)
    assert np.allclose(pred.probabilities.astype(np.float32).sum(0), 1, atol=1e-2)
    out = api.export_nifti(pred.labels, image, tmp_path / "seg.nii.gz", label_names=pred.class_names)
    back = api.load_volume(out)
    assert back.geometry.allclose(image.geometry) and np.array_equal(back.array, pred.labels)


def test_onnx_export_matches_torch_and_predicts_the_same(data, model, tmp_path):
    report = api.export_onnx(model, tmp_path / "m.onnx")
    assert report.max_abs_diff < 1e-4
    image = api.load_volume(data[1][0])
    by_torch = api.Segmenter.load(model).predict(image)
    onnx_seg = api.Segmenter.load(report.path)
    assert onnx_seg.backend_name == "onnxruntime" and onnx_seg.class_names == list(NAMES)
    assert onnx_seg.backend.session.get_session_options().intra_op_num_threads == api.default_threads()
    agree = (onnx_seg.predict(image).labels == by_torch.labels).mean()
    assert agree > 0.999
    one_thread = api.Segmenter.load(report.path, api.PredictConfig(device="cpu", threads=1))
    assert one_thread.backend.session.get_session_options().intra_op_num_threads == 1
    assert np.array_equal(one_thread.predict(image).labels, onnx_seg.predict(image).labels)


def test_bad_onnx_files_are_clear_errors(model, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    with pytest.raises(api.InputError, match="not a loadable ONNX model"):
        api.Segmenter.load(junk)
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(foreign))
    with pytest.raises(api.InputError, match="not exported by GCL Studio"):
        api.Segmenter.load(foreign)
    with pytest.raises(api.OutputError, match=".onnx"):
        api.export_onnx(model, tmp_path / "model.bin")


def test_checkpoint_that_is_a_pickle_of_objects_is_refused(tmp_path):
    import pickle

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "gcl-segmenter", "payload": Path("/etc/passwd")}))
    with pytest.raises(api.CheckpointError):
        api.Segmenter.load(evil)


def test_largest_component_keeps_one_blob_per_class():
    labels = np.zeros((5, 20, 20), np.uint8)
    labels[1:4, 2:8, 2:8] = 1
    labels[2, 15:17, 15:17] = 1  # small island of class 1
    labels[0, 10:12, 10:12] = 2
    out = keep_largest_component(labels)
    assert out[2, 15, 15] == 0 and out[2, 4, 4] == 1 and out[0, 10, 10] == 2


def test_network_shape_comes_from_the_pretrained_checkpoint(data, tmp_path):
    """A user who forgets --base-channels still gets the pre-trained encoder, not a shape error."""
    wider = dataclasses.replace(ft_config(data, tmp_path / "m.pt", steps=1), model=api.ModelConfig(base_channels=16))
    events = []
    result = api.finetune(wider, on_event=events.append)
    state = load_checkpoint(result.model_path)
    assert api.from_json(api.ModelConfig, state["model_config_json"]).base_channels == 4
    assert any(isinstance(e, api.Log) and "using the network of" in e.message for e in events)


@pytest.mark.parametrize("field_of_view_mm", [None, 30.0, 90.0])
def test_previews_land_on_the_stored_grid_like_the_segmenters_prediction(data, tmp_path, field_of_view_mm):
    """A non-square scan whose header rotates and mirrors the in-plane axes (the synthetic direction), its
    whole field of view resized or a fixed one cropping (30 mm) or padding (90 mm) it: the preview of the last
    step is the saved model's prediction of that slice, in the stored layout."""
    img, lab = phantom(7, shape=(12, 36, 44))
    image, labels = write(img, tmp_path / "rect.nii.gz"), write(lab, tmp_path / "rect_seg.nii.gz")
    events = []
    pre = dataclasses.replace(TINY_PRE, field_of_view_mm=field_of_view_mm)
    cfg = ft_config(data, tmp_path / "r.pt", image=str(image), labels=str(labels), slices=(2, 6, 9),
                    preview_slices=(4,), preview_every=40, steps=40, preprocess=pre)
    result = api.finetune(cfg, on_event=events.append)
    preview = [e for e in events if isinstance(e, Preview)][-1]
    assert preview.step == 40 and preview.masks[0].shape == (36, 44)
    predicted = api.Segmenter.load(result.model_path, api.PredictConfig(device="cpu", backend="torch"))
    full = predicted.predict(api.load_volume(image)).labels
    assert len(np.unique(full[4])) > 1  # not one class everywhere, so a wrong flip or transpose would show
    assert np.array_equal(preview.masks[0], full[4])
