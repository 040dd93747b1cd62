"""MoveNet ports: the converted weights reproduce Google's graphs (the tf2onnx references in ../shared/models),
and the TFJS converter refuses malformed files with one-line errors."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from edgepose.errors import ConfigError, ConvertError
from edgepose.heads import check_trainable
from edgepose.models import create
from edgepose.models.movenet_convert import convert, main
from edgepose.models.tfjs import read_tfjs
from tests.conftest import SHARED_MODELS

TFJS = SHARED_MODELS / "movenet-tfjs"
REFERENCE = SHARED_MODELS / "movenet-onnx"
HEADS = ("center", "box_scale", "box_offset", "kpt_regress", "kpt_heatmap", "kpt_offset")


def reference_with_heads(name: str):
    """An ORT session of Google's graph with the raw head convolutions (NCHW) exposed as extra outputs."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(REFERENCE / f"{name}.onnx"))
    heads = {}
    for node in proto.graph.node:
        for h in HEADS:
            if node.op_type == "Conv" and f"/{h}_0/conv2d_" in node.name:
                heads["centre" if h == "center" else h] = node.output[0]
    for tensor in heads.values():
        proto.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess, heads


def real_frames(shared_data, size: int) -> list[np.ndarray]:
    """RGB uint8 frames (size x size): the coco-mini photos and one frame of two real videos."""
    frames = [cv2.imread(str(p)) for p in sorted((shared_data / "coco-mini").glob("*.jpg"))[:3]]
    for video in ("sports2d-demo.mp4", "pose2sim-multiperson-cam01.mp4"):
        cap = cv2.VideoCapture(str(shared_data / "real-video" / video))
        cap.set(cv2.CAP_PROP_POS_FRAMES, 40)
        ok, frame = cap.read()
        cap.release()
        assert ok, video
        frames.append(frame)
    return [np.ascontiguousarray(cv2.resize(f, (size, size))[:, :, ::-1]) for f in frames]


@pytest.mark.parametrize("name", ["movenet-lightning", "movenet-thunder", "movenet-multipose"])
def test_port_reproduces_googles_head_outputs(name, shared_data):
    sess, heads = reference_with_heads(name)
    model = create(name, weights="default").eval()
    assert model.head_names == tuple(heads) or set(model.head_names) == set(heads)
    size = model.edgepose_meta.input_size[0]
    names = [o.name for o in sess.get_outputs()]
    worst = 0.0
    for rgb in real_frames(shared_data, size):
        ref = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: rgb[None].astype(np.int32)})))
        x = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None] / 255.0
        x = (x - 0.5) / 0.5  # the model's mean / std
        with torch.no_grad():
            mine = dict(zip(model.head_names, model(x)))
        for head, tensor in heads.items():
            a, b = ref[tensor], mine[head].numpy()
            assert a.shape == b.shape, head
            worst = max(worst, float(np.abs(a - b).max() / np.abs(a).max()))
    assert worst < 1e-3, worst  # measured 3e-5 (lightning, multipose) and 2e-4 (thunder)


def test_meta_says_what_the_outputs_mean():
    single, multi = create("movenet-lightning"), create("movenet-multipose", input_size=(320, 256))
    assert single.edgepose_meta.kind == "regression" and single.edgepose_meta.codec["kind"] == "movenet"
    assert single.edgepose_meta.input_size == (192, 192) and single.edgepose_meta.mean == (0.5, 0.5, 0.5)
    assert multi.edgepose_meta.kind == "centernet" and multi.edgepose_meta.codec["max_people"] == 6
    with torch.no_grad():
        out = multi(torch.zeros(1, 3, 256, 320))
    assert [tuple(o.shape) for o in out] == [(1, c, 64, 80) for c in (1, 2, 2, 34, 17, 34)]
    with pytest.raises(ConfigError, match="multiple of 32"):
        create("movenet-multipose", input_size=(250, 256))
    with pytest.raises(ConfigError, match="Fine-tune it in your own loop"):
        check_trainable(single)


def test_parameter_names_are_readable():
    keys = set(create("movenet-multipose").state_dict())
    for k in ("backbone.stem.conv.weight", "backbone.blocks.0.depthwise.conv.bias",
              "backbone.blocks.16.project.conv.weight", "backbone.last.conv.bias", "fpn.lateral.3.weight",
              "fpn.fuse.2.depthwise.weight", "heads.centre.hidden.pointwise.bias", "heads.box_scale.out.weight"):
        assert k in keys, k


def _copy(tmp_path, name="movenet-lightning"):
    for ext in ("json", "bin"):
        shutil.copy(TFJS / f"{name}.{ext}", tmp_path / f"{name}.{ext}")
    return tmp_path / f"{name}.json"


def _edit_manifest(path, fn):
    doc = json.loads(path.read_text())
    fn(doc["weightsManifest"][0]["weights"])
    path.write_text(json.dumps(doc))


def test_truncated_shard_is_one_line_error(tmp_path):
    path = _copy(tmp_path)
    bin_path = path.with_suffix(".bin")
    bin_path.write_bytes(bin_path.read_bytes()[:-100])
    with pytest.raises(ConvertError, match=r"hold 4650116 bytes, the manifest declares 4650216: the shard is trunc"):
        read_tfjs(path)


def test_unknown_dtype_is_one_line_error(tmp_path):
    path = _copy(tmp_path)
    _edit_manifest(path, lambda ws: ws[0].update(dtype="complex64"))
    with pytest.raises(ConvertError, match="has dtype 'complex64'; expected one of"):
        read_tfjs(path)


def test_missing_and_misshaped_weights_are_one_line_errors(tmp_path):
    tfjs = read_tfjs(TFJS / "movenet-lightning.json")
    model = create("movenet-lightning")
    name = next(k for k in tfjs.weights if k.endswith("block_3_expand/Conv2D_weights"))
    tfjs.weights[name] = tfjs.weights[name][:, :, :, :100]
    shapes = r"has shape \[1, 1, 24, 100\] → \[100, 24, 1, 1\], .*expects \[144, 24, 1, 1\]"
    with pytest.raises(ConvertError, match=shapes):
        convert(tfjs, model)
    del tfjs.weights[name]
    with pytest.raises(ConvertError, match="1 parameters of movenet-lightning have no weight .*blocks.3.expand"):
        convert(tfjs, model)
    with pytest.raises(ConvertError, match="does not have"):  # MultiPose's box heads in a single-pose port
        convert(read_tfjs(TFJS / "movenet-multipose.json"), model)


def test_converter_cli(tmp_path, capsys):
    out = tmp_path / "lightning.pt"
    assert main([str(TFJS / "movenet-lightning.json"), "--model", "movenet-lightning", "--out", str(out)]) == 0
    model = create("movenet-lightning", weights=str(out))
    default = create("movenet-lightning", weights="default")
    for (k, a), b in zip(model.state_dict().items(), default.state_dict().values()):
        assert torch.equal(a, b), k
    assert main([str(tmp_path / "nope.json"), "--model", "movenet-lightning", "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: TFJS model file not found")
