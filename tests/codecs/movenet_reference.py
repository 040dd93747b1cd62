"""Test helper: Google's MoveNet graphs (the tf2onnx references in ../shared/models/movenet-onnx) run in ONNX
Runtime with the raw head convolutions exposed as extra outputs, plus real RGB frames to feed them.

Test-only (production code never imports this). ``Reference(name).run(rgb)`` returns the raw maps in the
codec's output order (NCHW float32, the tf2onnx Conv outputs, which are NCHW already) and Google's own final
output converted to input pixels in the codec's return layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
ONNX_DIR = SHARED / "models" / "movenet-onnx"

# model: (input side in px, raw head scopes in the codec's output order)
MODELS = {
    "movenet-lightning": (192, ("center", "kpt_regress", "kpt_heatmap", "kpt_offset")),
    "movenet-thunder": (256, ("center", "kpt_regress", "kpt_heatmap", "kpt_offset")),
    "movenet-multipose": (256, ("center", "box_scale", "box_offset", "kpt_regress", "kpt_heatmap", "kpt_offset")),
}


class Reference:
    """One ORT session of Google's graph ``name`` with its head convolutions as extra outputs."""

    def __init__(self, name: str) -> None:
        import onnx
        import onnxruntime as ort

        self.size, scopes = MODELS[name]
        self.multipose = name.endswith("multipose")
        proto = onnx.load(str(ONNX_DIR / f"{name}.onnx"))
        by_scope = {}
        for node in proto.graph.node:
            for scope in scopes:
                if node.op_type == "Conv" and f"/{scope}_0/conv2d_" in node.name:
                    by_scope[scope] = node.output[0]
        missing = [s for s in scopes if s not in by_scope]
        if missing:
            raise RuntimeError(f"{name}: no head Conv found for {missing}")
        self.heads = [by_scope[s] for s in scopes]
        self.constants = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer
                          if "feature_extractor" not in t.name and "_0/" not in t.name}
        self.node_attrs = {n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
                           for n in proto.graph.node if "feature_extractor" not in n.name and "_0/" not in n.name}
        self.final = proto.graph.output[0].name
        for tensor in self.heads:
            proto.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def run(self, rgb: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """(H, W, 3) uint8 RGB → (raw maps, each (1, C, H/4, W/4)), Google's output in input pixels:
        single-pose (keypoints (1, 17, 3) x, y, score,); multipose (keypoints (1, 6, 17, 3), scores (1, 6),
        boxes (1, 6, 4) xyxy)."""
        x = np.ascontiguousarray(rgb[None].astype(np.int32))
        outs = self.session.run([self.final, *self.heads], {self.input: x})
        final, maps = outs[0].astype(np.float64), tuple(o.astype(np.float32) for o in outs[1:])
        h, w = float(rgb.shape[0]), float(rgb.shape[1])
        if not self.multipose:
            yxs = final.reshape(1, 17, 3)
            return maps, (np.stack([yxs[..., 1] * w, yxs[..., 0] * h, yxs[..., 2]], -1),)
        people = final.reshape(1, 6, 56)
        yxs = people[..., :51].reshape(1, 6, 17, 3)
        kpts = np.stack([yxs[..., 1] * w, yxs[..., 0] * h, yxs[..., 2]], -1)
        ymin, xmin, ymax, xmax = (people[..., 51 + i] * s for i, s in enumerate((h, w, h, w)))
        return maps, (kpts, people[..., 55], np.stack([xmin, ymin, xmax, ymax], -1))


def real_frames(size: tuple[int, int], photos: int = 2,
                videos: tuple[str, ...] = ("sports2d-demo.mp4", "pose2sim-multiperson-cam01.mp4")) -> list[np.ndarray]:
    """RGB uint8 (H, W, 3) frames of ``size`` (W, H): the first ``photos`` coco-mini photos, frame 40 of each video."""
    import cv2

    data = SHARED / "data"
    frames = [cv2.imread(str(p)) for p in sorted((data / "coco-mini").glob("*.jpg"))[:photos]]
    for video in videos:
        cap = cv2.VideoCapture(str(data / "real-video" / video))
        cap.set(cv2.CAP_PROP_POS_FRAMES, 40)
        ok, frame = cap.read()
        cap.release()
        if not ok:
            raise RuntimeError(f"cannot read a frame of {video}")
        frames.append(frame)
    return [np.ascontiguousarray(cv2.resize(f, tuple(size), interpolation=cv2.INTER_AREA)[:, :, ::-1])
            for f in frames]
