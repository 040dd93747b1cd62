"""`edgepose import`: foreign pre-built models (MoveNet TFLite, a plain ONNX file) wrapped in bundles."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgepose
from edgepose.cli import main
from edgepose.errors import BundleError, ConfigError
from edgepose.export.importer import import_model

pytestmark = pytest.mark.tflite


@pytest.fixture(scope="module")
def movenet(shared_data):
    path = shared_data.parent / "models" / "movenet_singlepose_lightning_int8.tflite"
    assert path.is_file(), f"MoveNet model expected at {path}"
    return path


def test_movenet_gives_plausible_keypoints(movenet, shared_data, tmp_path, capsys):
    assert main(["import", str(movenet), "--kind", "regression", "--keypoints", "coco", "--out",
                 str(tmp_path / "mn")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input"]["size"] == [192, 192] and info["input"]["dtype"] == "uint8"
    assert info["input"]["layout"] == "NHWC"
    coco = json.loads((shared_data / "coco-mini" / "test_coco.json").read_text())
    ann = max((a for a in coco["annotations"] if a["num_keypoints"] > 10), key=lambda a: a["area"])
    img_info = next(i for i in coco["images"] if i["id"] == ann["image_id"])
    import cv2

    image = cv2.imread(str(shared_data / "coco-mini" / img_info["file_name"]))
    x, y, w, h = ann["bbox"]
    with edgepose.load(tmp_path / "mn", threads=2, verify=True) as rt:  # an import carries golden samples too
        assert rt.backend == "tflite"
        poses = rt(image, boxes=np.array([[x, y, x + w, y + h]], np.float32))
    kps = poses.keypoints[0]
    gt = np.asarray(ann["keypoints"], np.float32).reshape(17, 3)
    vis = gt[:, 2] > 0
    err = np.linalg.norm(kps[vis, :2] - gt[vis, :2], axis=1)
    # plausible: most visible joints land within 15% of the person's box size of the annotation
    assert np.median(err) < 0.15 * max(w, h), err
    assert (kps[:, 2] > 0.2).sum() >= 8


def test_onnx_import_round_trip(tmp_path):
    from edgepose.models import create

    b = edgepose.export(create("simplebaseline-mnv2s-edge"), target="onnx", out=tmp_path / "exp", decode="host",
                        log=None)
    imported = import_model(b.model_path, kind="heatmap", keypoints="coco", out=tmp_path / "imp")
    assert imported.manifest["spec"]["codec"]["heatmap_size"] == [24, 32]
    x = np.random.default_rng(0).standard_normal((1, 3, 128, 96)).astype(np.float32)
    with edgepose.load(tmp_path / "exp") as a, edgepose.load(tmp_path / "imp") as c:
        np.testing.assert_allclose(a.infer(x)[0], c.infer(x)[0], rtol=0, atol=1e-6)


def test_import_checks_options_against_the_model(tmp_path):
    """Options that contradict the file, or a pixel-space output declared as MoveNet regression, write nothing;
    --heatmap-method dark decodes a foreign model as the DARK-trained original does."""
    from edgepose.models import create

    model = create("simplebaseline-mnv2s-edge", weights="default")
    host = edgepose.export(model, target="onnx", out=tmp_path / "host", decode="host", log=None).model_path
    graph = edgepose.export(model, target="onnx", out=tmp_path / "graph", decode="graph", log=None).model_path
    cases = [(dict(layout="NHWC"), "has 96 channels there"), (dict(dtype="uint8"), "the model's input is float32"),
             (dict(std=(0, 0, 0)), "std must be"), (dict(mean=(float("nan"), 1, 1)), "mean must be")]
    for kw, match in cases:
        with pytest.raises(ConfigError, match=match):
            import_model(host, kind="heatmap", out=tmp_path / "bad", **kw)
    with pytest.raises(ConfigError, match="expected coordinates normalised to \\[0, 1\\]"):
        import_model(graph, kind="regression", out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    import_model(host, kind="heatmap", out=tmp_path / "dark", heatmap_method="dark")
    image = np.full((160, 120, 3), 90, np.uint8)
    image[40:120, 50:70] = 200
    with edgepose.load(tmp_path / "host") as a, edgepose.load(tmp_path / "dark") as c:
        ka, kc = a(image).keypoints, c(image).keypoints
        np.testing.assert_allclose(ka[..., :2], kc[..., :2], atol=1e-4)
        # the zoo model lowers the score of joints whose peak is not distinct (peak_margin); a foreign import's
        # score is the heatmap's maximum
        assert np.all(ka[..., 2] <= kc[..., 2] + 1e-6)


def test_import_errors(tmp_path, movenet):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(BundleError, match="cannot load"):
        import_model(bad, kind="regression", out=tmp_path / "b1")
    assert not (tmp_path / "b1").exists()
    with pytest.raises(ConfigError, match="unsupported model format"):
        import_model(_touch(tmp_path / "m.pb"), kind="heatmap", out=tmp_path / "b2")
    with pytest.raises(ConfigError, match="does not match the model's input"):
        import_model(movenet, kind="regression", input_size=(256, 256), out=tmp_path / "b3")


def _touch(path):
    path.write_bytes(b"x")
    return path
