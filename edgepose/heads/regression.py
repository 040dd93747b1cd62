"""The regression head: keypoints straight out of the graph (MoveNet SinglePose with its decoder, or imported)."""

from __future__ import annotations

import numpy as np

from edgepose.errors import ConfigError
from edgepose.heads.base import Head, register_head


class RegressionHead(Head):
    name = "regression"
    outputs = {
        "regression": {"host": ("keypoints",), "graph": ("keypoints",)},
        "movenet": {"host": ("centre", "kpt_regress", "kpt_heatmap", "kpt_offset"), "graph": ("keypoints",)},
    }
    decoders = {"movenet": ("edgepose.codecs.graph_movenet", "MoveNetDecode")}

    def decode_crops(self, runtime, outs, n):
        if not runtime.spec.codec:  # a foreign model's own output (import)
            return self._normalised_yx(runtime.spec.input.size, outs[0], n)
        return super().decode_crops(runtime, outs, n)

    @staticmethod
    def _normalised_yx(size, out: np.ndarray, n: int) -> np.ndarray:
        """MoveNet-style (N, 1, K, 3) y, x, score in [0, 1] → (N, K, 3) x, y, score in input pixels."""
        arr = np.asarray(out, np.float32).reshape(n, -1, 3)
        w, h = size
        return np.stack([arr[..., 1] * w, arr[..., 0] * h, arr[..., 2]], axis=-1)

    def import_codec(self, inp, outputs, num_keypoints, method):
        o = outputs[0]
        if o[-1] != 3 or o[-2] not in (num_keypoints, -1) or len(o) not in (3, 4):
            raise ConfigError(f"regression output has shape {o}; expected (N, 1, {num_keypoints}, 3) or "
                              f"(N, {num_keypoints}, 3): y, x, score (MoveNet)")
        inp.padding = 1.0  # single-pose regressors (MoveNet) see the whole frame, letterboxed
        return {}

    def check_import(self, rt) -> None:
        """One call on a grey image: the model must give normalised [0, 1] coordinates."""
        from edgepose.pipeline.preprocess import to_tensor

        w, h = rt.spec.input.size
        out = np.asarray(rt.infer(to_tensor(np.full((1, h, w, 3), 128, np.uint8), rt.spec.input))[0], np.float32)
        yx = out.reshape(-1, 3)[:, :2]
        if not np.isfinite(yx).all() or yx.min() < -0.5 or yx.max() > 1.5:
            raise ConfigError(f"--kind regression: on a grey image the model gave y, x in [{yx.min():.3g}, "
                              f"{yx.max():.3g}]; expected coordinates normalised to [0, 1] (MoveNet-style "
                              "(N, 1, K, 3) y, x, score)")


register_head(RegressionHead())
