"""Bring your own model, for real models: the map's stride and layout are read from a dry run, the model may return a
tensor, tuple, list or dict (``output=`` picks one), and a traced graph that fails is exported again with dynamo.

Random-weight toy models (one to four small convs), ONNX target, the default parity gate (raw outputs 1e-4 relative,
keypoints 0.1 px); the NHWC tuple model also goes to OpenVINO.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgepose
from edgepose.bundle import MANIFEST
from edgepose.errors import ConfigError, ExportError
from edgepose.runtimes import is_available

torch = pytest.importorskip("torch")
nn = torch.nn

pytestmark = [pytest.mark.onnxruntime,
              pytest.mark.skipif(not is_available("onnxruntime"), reason="onnxruntime not installed")]
SIZE = (48, 64)  # (w, h): non-square


class Toy(nn.Module):
    """Heatmaps at ``stride`` (1, 2, 4, 8), as a tensor / tuple / list / dict, NCHW or NHWC, logits or sigmoid."""

    def __init__(self, stride: int = 4, kind: str = "tensor", nhwc: bool = False, sigmoid: bool = False, k: int = 17):
        super().__init__()
        layers = [nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU()]
        for _ in range(int(np.log2(stride))):
            layers += [nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU()]
        self.body, self.head = nn.Sequential(*layers), nn.Conv2d(8, k, 3, 1, 1)
        self.kind, self.nhwc, self.sigmoid = kind, nhwc, sigmoid

    def forward(self, x):
        f = self.body(x)
        hm = self.head(f)
        hm = hm.sigmoid() if self.sigmoid else hm
        hm = hm.permute(0, 2, 3, 1) if self.nhwc else hm
        if self.kind == "tuple":
            return f, hm
        if self.kind == "list":
            return [hm, f]
        if self.kind == "dict":
            return {"features": f, "heatmaps": hm}
        return hm


def _export(model, tmp_path, target="onnx", **kw):
    torch.manual_seed(0)
    return edgepose.export(model, target=target, out=tmp_path / target, head="heatmap", keypoints="coco",
                           input_size=SIZE, log=None, **kw)


def _passed(bundle, stride, layout="NCHW"):
    m = bundle.manifest
    assert m["parity"]["passed"], m["parity"]
    assert m["export"]["exporter"] == "torchscript"
    byo = m["export"]["byo"]
    assert byo["stride"] == stride and byo["layout"] == layout
    assert m["spec"]["codec"]["heatmap_size"] == [SIZE[0] // stride, SIZE[1] // stride]
    return byo


@pytest.mark.parametrize("stride", [1, 2, 8])
def test_stride_is_read_from_a_dry_run(stride, tmp_path):
    torch.manual_seed(stride)
    bundle = _export(Toy(stride), tmp_path)
    byo = _passed(bundle, stride)
    assert byo["output"] is None and byo["activation"] == "logits"
    assert byo["received"] == f"[(1, 17, {SIZE[1] // stride}, {SIZE[0] // stride})]"
    with edgepose.load(bundle.path, threads=1) as rt:  # the runtime decodes the stride-s maps it was given
        assert rt.spec.codec["heatmap_size"] == [SIZE[0] // stride, SIZE[1] // stride]


@pytest.mark.parametrize("kind, output, picked", [
    ("tuple", 1, 1), ("tuple", None, 1), ("tuple", -1, 1), ("list", 0, 0), ("list", None, 0),
    ("dict", "heatmaps", "heatmaps"), ("dict", None, "heatmaps"), ("dict", 1, "heatmaps"),
])
def test_output_picks_one_of_several(kind, output, picked, tmp_path):
    torch.manual_seed(0)
    bundle = _export(Toy(4, kind), tmp_path, output=output)
    assert _passed(bundle, 4)["output"] == picked


def test_nhwc_tuple_sigmoid_to_onnx_and_openvino(tmp_path):
    torch.manual_seed(0)
    model = Toy(2, "tuple", nhwc=True, sigmoid=True)
    byo = _passed(_export(model, tmp_path), 2, "NHWC")
    assert byo["activation"] == "activated" and byo["received"] == "((1, 8, 32, 24), (1, 32, 24, 17))"
    if not is_available("openvino"):
        pytest.skip("openvino not installed: the ONNX half ran")
    _passed(_export(model, tmp_path, target="openvino"), 2, "NHWC")


def test_source_hash_is_the_users_module(tmp_path):
    from edgepose.export.manifest import source_hash

    torch.manual_seed(0)
    model = Toy(4, "dict")
    bundle = _export(model, tmp_path)
    assert bundle.manifest["model"]["source_sha256"] == source_hash(model)
    assert bundle.manifest["model"]["name"] == "Toy"


@pytest.mark.parametrize("model, output, match", [
    (Toy(4, k=5), None, r"^output shapes \[\(1, 5, 16, 12\)\] match no heatmap head for 17 coco keypoints at input "
                        r"48x64; expected \(N, 17, H, W\) or \(N, H, W, 17\) with 64/H = 48/W in \{1, 2, 4, 8\}$"),
    (Toy(4, "tuple", k=5), None, r"^output shapes \(\(1, 8, 16, 12\), \(1, 5, 16, 12\)\) match no heatmap head"),
    (Toy(4, "dict"), "features", r"^output shapes \{'features': \(1, 8, 16, 12\), 'heatmaps': \(1, 17, 16, 12\)\} "
                                 "match no heatmap head"),
    (Toy(16), None, r"\[\(1, 17, 4, 3\)\] match no heatmap head .* in \{1, 2, 4, 8\}$"),
    (Toy(4, "dict"), "heatmap", r"^output='heatmap': expected an index 0..1 or a key \('features', 'heatmaps'\); "),
    (Toy(4, "tuple"), 2, r"^output=2: expected an index 0..1; output shapes \(\(1, 8, 16, 12\), \(1, 17, 16, 12\)\)$"),
    (Toy(4), 1, r"^output=1: the model returns one tensor; output shapes \[\(1, 17, 16, 12\)\]$"),
])
def test_refusals_are_one_line_and_name_the_shapes(model, output, match, tmp_path):
    with pytest.raises(ConfigError, match=match) as info:
        _export(model, tmp_path, output=output)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "onnx").exists()


def test_several_fitting_outputs_ask_for_output(tmp_path):
    class TwoStages(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Toy(4), Toy(4)

        def forward(self, x):
            return [self.a(x), self.b(x)]

    with pytest.raises(ConfigError, match=r"outputs 0, 1 of \[\(1, 17, 16, 12\), \(1, 17, 16, 12\)\] all fit the "
                                          r"heatmap head .*; pass output= \(--output\)"):
        _export(TwoStages(), tmp_path)
    assert _export(TwoStages(), tmp_path, output=-1).manifest["export"]["byo"]["output"] == 1


def test_a_failing_dry_run_is_one_line(tmp_path):
    class NeedsGrey(nn.Module):
        def forward(self, x):
            return x.view(1, 1, -1).mean(dim=3)

    with pytest.raises(ConfigError, match=r"^dry run of NeedsGrey on a \(1, 3, 64, 48\) input \(input_size=\(48, "
                                          r"64\)\) failed: IndexError: "):
        _export(NeedsGrey(), tmp_path)


def test_centernet_dict_outputs_are_taken_in_order(tmp_path):
    class TinyCenterNet(nn.Module):
        names = ("hm", "reg", "wh", "hps", "hm_hp", "hp_offset")

        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
            self.heads = nn.ModuleList(nn.Conv2d(8, c, 1) for c in (1, 2, 2, 34, 17, 2))

        def forward(self, x):
            f = self.body(x)
            return {n: h(f) for n, h in zip(self.names, self.heads)}

    torch.manual_seed(0)
    b = edgepose.export(TinyCenterNet(), target="onnx", out=tmp_path / "b", head="centernet", keypoints="coco",
                        input_size=(64, 48), log=None)
    assert b.manifest["parity"]["passed"] and b.manifest["spec"]["codec"]["stride"] == 2
    assert b.manifest["export"]["byo"]["output"] == list(TinyCenterNet.names)
    with pytest.raises(ConfigError, match=r"^output='hm': a centernet model's 6 outputs are all taken, in order"):
        edgepose.export(TinyCenterNet(), target="onnx", out=tmp_path / "c", head="centernet", input_size=(64, 48),
                        output="hm", log=None)


# ---- the dynamo fallback -------------------------------------------------------------------------------------------
def _broken(real, which: set[str], how: str):
    """export_onnx whose ``which`` exporters write a wrong graph (``how='wrong'``) or raise (``how='raise'``)."""
    import onnx
    from onnx import numpy_helper

    def export_onnx(model, path, **kw):
        exporter = kw.get("exporter", "torchscript")
        if exporter in which and how == "raise":
            raise ExportError(f"torch.onnx.export failed for {model.edgepose_meta.name}: injected")
        exp = real(model, path, **kw)
        if exporter in which:  # the graph's weights are off: parity must see it
            proto = onnx.load(str(exp.path))
            for init in proto.graph.initializer:
                arr = numpy_helper.to_array(init)
                if arr.ndim == 4:
                    init.CopyFrom(numpy_helper.from_array((arr * 1.5 + 0.1).astype(arr.dtype), init.name))
            onnx.save(proto, str(exp.path))
        return exp

    return export_onnx


@pytest.mark.parametrize("how", ["wrong", "raise"])
def test_a_failing_trace_falls_back_to_dynamo(how, tmp_path, monkeypatch):
    from edgepose.export import onnx as onnx_mod

    monkeypatch.setattr(onnx_mod, "export_onnx", _broken(onnx_mod.export_onnx, {"torchscript"}, how))
    lines: list[str] = []
    torch.manual_seed(0)
    bundle = edgepose.export(Toy(2, "tuple", nhwc=True), target="onnx", out=tmp_path / "b", head="heatmap",
                             keypoints="coco", input_size=SIZE, log=lines.append)
    m = bundle.manifest
    assert m["parity"]["passed"] and m["export"]["exporter"] == "dynamo"
    assert any("dynamo exporter" in n for n in m["export"]["notes"]) and m["export"]["opset"] >= 18
    assert any("trying the dynamo exporter" in line for line in lines)
    with edgepose.load(bundle.path, threads=1) as rt:
        assert rt.infer(np.zeros((1, 3, SIZE[1], SIZE[0]), np.float32))[0].shape == (1, 17, 3)


def test_both_exporters_failing_refuses_naming_both(tmp_path, monkeypatch):
    from edgepose.export import onnx as onnx_mod

    monkeypatch.setattr(onnx_mod, "export_onnx", _broken(onnx_mod.export_onnx, {"torchscript", "dynamo"}, "wrong"))
    with pytest.raises(ExportError, match=r"both ONNX exporters failed — torchscript exporter: onnx parity gate "
                                          r"failed.*; dynamo exporter: onnx parity gate failed") as info:
        _export(Toy(4), tmp_path)
    assert "\n" not in str(info.value) and not (tmp_path / "onnx").exists()


def test_zoo_models_keep_the_trace_only(tmp_path, monkeypatch):
    from edgepose.export import onnx as onnx_mod
    from edgepose.models import create

    monkeypatch.setattr(onnx_mod, "export_onnx", _broken(onnx_mod.export_onnx, {"torchscript"}, "raise"))
    with pytest.raises(ExportError, match="^torch.onnx.export failed for simplebaseline-mnv2s-edge: injected$"):
        edgepose.export(create("simplebaseline-mnv2s-edge"), target="onnx", out=tmp_path / "b", log=None)


def test_cli_output_flag(tmp_path, capsys):
    from edgepose.cli import main

    src = tmp_path / "mine.py"
    src.write_text("import torch\nfrom torch import nn\n\n\nclass M(nn.Module):\n"
                   "    def __init__(self):\n        super().__init__()\n        torch.manual_seed(0)\n"
                   "        self.c = nn.Conv2d(3, 17, 3, 2, 1)\n\n"
                   "    def forward(self, x):\n        return {'aux': x, 'hm': self.c(x).permute(0, 2, 3, 1)}\n\n\n"
                   "def make():\n    return M()\n")
    code = main(["export", "--model", f"{src}:make", "--head", "heatmap", "--input-size", "48", "64", "--output",
                 "hm", "--target", "onnx", "--out", str(tmp_path / "b")])
    assert code == 0 and "onnx" in capsys.readouterr().out
    m = json.loads((tmp_path / "b" / MANIFEST).read_text())
    assert m["export"]["byo"]["output"] == "hm" and m["export"]["byo"]["layout"] == "NHWC"
    assert m["export"]["byo"]["stride"] == 2
