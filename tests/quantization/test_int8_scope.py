"""INT8 of chosen modules only (``int8_modules``): every op outside them stays float, on every quantizer.

The builds quantize only SimpleBaseline's MobileNetV2 trunk (``features``) of the default top-down model and check,
in each target's own file, that the deconvolution neck and the final layer kept float weights and got no
quantize ops on their inputs, while the trunk is INT8. Name resolution and bad input are unit-tested.
"""

from __future__ import annotations

import re

import pytest
from quant_builds import MODELS, target_builds

from edgepose.errors import ConfigError
from edgepose.export.int8_scope import (
    call_path,
    float_names,
    float_scope,
    in_scope,
    module_path,
    resolve_int8_modules,
    tflite_pattern,
)
from edgepose.models import create

pytestmark = pytest.mark.filterwarnings("ignore:calibration set has only:UserWarning")
TRUNK = ("features",)


# ---- resolution and names ----------------------------------------------------------------------------------
def test_the_movenet_students_quantize_their_trunk_and_the_user_overrides_it():
    student = create("movenet-heatmap-edge")
    # the top-down student keeps its full-resolution start (stem, first block) float too
    default = resolve_int8_modules(student, None)
    assert default[0] == "backbone.blocks.1" and default[-2:] == ("backbone.blocks.16", "backbone.last")
    assert resolve_int8_modules(create("movenet-centernet-edge"), None) == ("backbone",)
    assert resolve_int8_modules(student, "all") == ()
    assert resolve_int8_modules(student, ["all"]) == ()
    assert resolve_int8_modules(student, ["backbone", "fpn"]) == ("backbone", "fpn")
    assert resolve_int8_modules(create(MODELS[0]), None) == ()  # no declaration: the whole network


@pytest.mark.parametrize("bad, expected", [("nosuch", "'nosuch', which is not a module of movenet-heatmap-edge"),
                                           ([], "int8_modules is empty")])
def test_bad_module_names_are_one_line_errors(bad, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        resolve_int8_modules(create("movenet-heatmap-edge"), bad)
    assert "\n" not in str(err.value) and "backbone, fpn, heads" in str(err.value)


@pytest.mark.parametrize("name, path", [
    ("/features/features.1/conv/conv.0/conv.0.0/Conv", "features.1.conv.0.0.Conv"),  # container path repeated
    ("/model/backbone/blocks.0/depthwise/conv/Conv/WithoutBiases", "model.backbone.blocks.0.depthwise.conv.Conv."
                                                                   "WithoutBiases"),  # relative, OpenVINO suffix
    ("/conv/conv/Conv", "conv.conv.Conv"), ("/Sigmoid", "Sigmoid"), ("Multiply_n4", "Multiply_n4")])
def test_module_paths_read_from_both_exporter_naming_styles(name, path):
    assert module_path(name) == path


def test_onnx_names_inside_a_module_with_or_without_the_decoder_wrapper():
    assert in_scope("/features/features.1/conv/conv.0/conv.0.0/Conv", ("features.1.conv",))
    assert not in_scope("/features/features.1/conv/conv.0/conv.0.0/Conv", ("features.10",))
    assert in_scope("/backbone/blocks.0/depthwise/conv/Conv", ("backbone",))
    assert in_scope("/model/backbone/blocks.0/Add", ("backbone",))  # exported with its in-graph decoder
    assert in_scope("/model/backbone/blocks.0/Add", ("backbone.blocks.0",))
    assert not in_scope("/model/backbone/blocks.1/Add", ("backbone.blocks.0",))
    assert not in_scope("/fpn/lateral.0/Conv", ("backbone",))
    assert not in_scope("/backbone_extra/Conv", ("backbone",))
    names = ["/backbone/a/Conv", "/fpn/b/Conv", "/Sigmoid"]
    assert float_names(names, ("backbone",), "graph") == ["/fpn/b/Conv", "/Sigmoid"]
    assert float_names(names, (), "graph") == []
    with pytest.raises(ConfigError, match="matched no op of the graph"):
        float_names(names, ("heads",), "graph")


def _inside(tensor_names: str, modules: tuple[str, ...], model) -> bool:
    """Whether an op's ';'-joined output tensor names put it inside ``modules`` (the float scope's complement)."""
    return re.search(tflite_pattern(model, modules), tensor_names) is not None


def test_tflite_scope_regex_floats_what_lies_outside():
    from edgepose.export.targets.tflite import _outside_scope

    model = create("movenet-heatmap-edge")
    wrapped = "litert_torch.Wrapper/edgepose.models.movenet_heatmap.MoveNetHeatmap_wrapped"
    trunk = f"{wrapped}/edgepose.models.movenet.MobileNetV2Backbone_backbone/edgepose.models.movenet.ConvAct_stem;1"
    fpn = f"{wrapped}/edgepose.models.movenet.FeaturePyramid_fpn/torch.nn.modules.conv.Conv2d_3;2"
    logistic = f"{wrapped};;{wrapped}/edgepose.models.movenet.Head_kpt_heatmap/torch.nn.modules.conv.Conv2d_out;1"
    scope = float_scope(tflite_pattern(model, ("backbone",)))
    assert not re.search(scope, trunk) and _inside(trunk, ("backbone",), model)
    assert re.search(scope, fpn) and re.search(scope, logistic)
    assert not _inside(trunk.replace("_backbone/", "_backbone_extra/"), ("backbone",), model)
    assert _outside_scope([], (), model) is None  # no names: the whole network is quantized


def test_tflite_names_skip_the_containers_that_are_indexed_not_called():
    """litert-torch writes no segment for a ModuleList / ModuleDict ('backbone.blocks.1' is '.../
    MobileNetV2Backbone_backbone/InvertedResidual_1/...'): names through them, or naming them, still match."""
    model = create("movenet-heatmap-edge")
    assert call_path(model, "backbone.blocks.1.depthwise") == (
        "MobileNetV2Backbone_backbone", "InvertedResidual_1", "ConvAct_depthwise")
    assert call_path(model, "heads.kpt_heatmap") == ("Head_kpt_heatmap",)
    pkg = "edgepose.models.movenet"
    block = f"w/{pkg}.MobileNetV2Backbone_backbone/{pkg}.InvertedResidual_1/{pkg}.ConvAct_depthwise/x.Conv2d_conv;"
    for inside in (("backbone.blocks.1",), ("backbone.blocks",), ("backbone.blocks.1.depthwise",), ("backbone",)):
        assert _inside(block, inside, model), inside
    for outside in (("backbone.blocks.0",), ("backbone.blocks.10",), ("backbone.stem",), ("fpn",)):
        assert not _inside(block, outside, model), outside
    assert _inside(f"w/{pkg}.Head_kpt_heatmap/x.Conv2d_out;", ("heads",), model)


def test_tflite_names_that_a_module_list_makes_ambiguous_are_refused():
    """HRNet's branches.0 and fuse_layers.1.0 are both '.../HighResolutionModule_0/Sequential_0' in TFLite's names:
    a scope naming one of them would quantize the other too; an empty container names no op."""
    import torch.nn as nn

    hrnet = create("hrnet-w32")
    with pytest.raises(ConfigError, match="cannot tell stage2.0.branches.0 from stage2.0.fuse_layers"):
        tflite_pattern(hrnet, ("stage2.0.branches.0",))
    assert tflite_pattern(hrnet, ("stage2",))  # the enclosing stage is unambiguous
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ModuleList())
    with pytest.raises(ConfigError, match="int8_modules 1 is an empty ModuleList"):
        tflite_pattern(model, ("1",))


# ---- each quantizer ---------------------------------------------------------------------------------------------
def _consumers(graph, tensor: str) -> list:
    return [n for n in graph.node if tensor in n.input]


def test_onnxruntime_keeps_the_neck_and_final_layer_float(tmp_path_factory, capsys):
    import onnx

    from edgepose.cli import main

    b = target_builds("onnx", MODELS[0], tmp_path_factory).build("trunk", "int8", int8_modules=TRUNK)
    graph = onnx.load(str(b.path / "model.onnx")).graph
    dq_outputs = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]
    inside = [n for n in convs if in_scope(n.name, TRUNK)]
    outside = [n for n in convs if not in_scope(n.name, TRUNK) and not n.name.startswith("/decoder")]
    assert inside and outside
    assert all(n.input[1] in dq_outputs for n in inside)  # int8 weights
    for n in outside:  # float weights and float inputs
        assert not any(i in dq_outputs for i in n.input), n.name
    assert b.manifest["quantization"]["int8_modules"] == ["features"]
    assert b.manifest["quantization"]["float_outside_int8_modules"] >= len(outside)
    capsys.readouterr()
    assert main(["info", str(b.path)]) == 0
    out = capsys.readouterr().out
    assert "int8 modules: features (every other op float)" in out
    assert "disabled_optimizers=['WeightBiasQuantization']" in out


def test_info_writes_numbered_module_runs_as_ranges():
    from edgepose.commands.info import _compact

    student = create("movenet-heatmap-edge")
    assert _compact(list(resolve_int8_modules(student, None))) == "backbone.blocks.1-16, backbone.last"
    assert _compact(["features"]) == "features"
    assert _compact(["a.1", "a.3", "a.4", "b"]) == "a.1, a.3-4, b"


def test_auto_mixed_ranks_only_the_layers_int8_covers(tmp_path_factory):
    builds = target_builds("onnx", MODELS[0], tmp_path_factory)
    every = builds.target.quantizable_layers(builds.context(builds.root / "ctx-all", "int8"))
    trunk = builds.target.quantizable_layers(builds.context(builds.root / "ctx-trunk", "int8", int8_modules=TRUNK))
    assert trunk and all(in_scope(n, TRUNK) for n in trunk)
    assert set(trunk) < set(every) and any(n.endswith("/final_layer/Conv") for n in every)


@pytest.mark.openvino
def test_openvino_inserts_no_fake_quantize_outside_the_trunk(tmp_path_factory):
    pytest.importorskip("nncf", reason="nncf not installed (edgepose[openvino])")
    import openvino as ov

    builds = target_builds("openvino", MODELS[0], tmp_path_factory)
    scoped = builds.build("trunk", "int8", int8_modules=TRUNK)
    whole = builds.build("int8", "int8")
    model = ov.Core().read_model(str(scoped.path / "model.xml"))
    fq = [op for op in model.get_ordered_ops() if op.get_type_name() == "FakeQuantize"]
    targets = [t.get_node().get_friendly_name() for op in fq for t in op.output(0).get_target_inputs()]
    assert targets and all(in_scope(name, TRUNK) for name in targets)
    assert 0 < scoped.manifest["quantization"]["fake_quantize_ops"] < whole.manifest["quantization"][
        "fake_quantize_ops"]


@pytest.mark.tflite
def test_tflite_runs_the_neck_in_float_and_the_trunk_in_int8(tmp_path_factory):
    from edgepose.runtimes.tflite import interpreter_class

    builds = target_builds("tflite", MODELS[0], tmp_path_factory)
    b = builds.build("trunk", "int8", int8_modules=TRUNK)
    it = interpreter_class()(model_path=str(b.path / "model.tflite"))
    details = {d["index"]: d for d in it.get_tensor_details()}
    kinds = {"int8": [], "float": []}
    for op in it._get_ops_details():  # noqa: SLF001 — the interpreter's only op listing
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
            continue
        out = details[op["outputs"][0]]
        kinds["int8" if out["dtype"].__name__ == "int8" else "float"].append(out["name"])
    trunk = re.compile(tflite_pattern(builds.model, TRUNK))
    assert kinds["int8"] and all(trunk.search(n) for n in kinds["int8"])
    assert kinds["float"] and not any(trunk.search(n) for n in kinds["float"])
    assert b.manifest["quantization"]["int8_modules"] == ["features"]


@pytest.mark.tflite
def test_tflite_layers_inside_a_module_list_are_named_and_scoped(tmp_path_factory):
    """MoveNet's trunk blocks live in a ModuleList: the TFLite layers carry their PyTorch names and a scope of
    one block covers exactly that block's three convs; a name that covers no layer is a one-line error."""
    from edgepose.export.targets.tflite import _outside_scope, layer_table

    builds = target_builds("tflite", "movenet-heatmap-edge", tmp_path_factory)
    ctx = builds.context(builds.root / "ctx-block", "int8", int8_modules=("backbone.blocks.1",))
    assert builds.target.quantizable_layers(ctx) == [
        "backbone.blocks.1.expand.conv", "backbone.blocks.1.depthwise.conv", "backbone.blocks.1.project.conv"]
    layers = layer_table(next(builds.root.glob("ws/tflite-fp32-*.tflite")), builds.model)
    blocks = [layer for layer in layers if layer.name.startswith("backbone.blocks.")]
    with pytest.raises(ConfigError, match="int8_modules fpn matched no layer of the TFLite model"):
        _outside_scope(blocks, ("backbone.blocks.1", "fpn"), builds.model)


def test_the_cli_refuses_an_unknown_module_before_calibrating(capsys, tmp_path):
    from edgepose.cli import main

    code = main(["export", "--model", "movenet-heatmap-edge", "--target", "onnx", "--precision", "int8",
                 "--calib", "synthetic:8", "--int8-modules", "trunk", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code != 0 and "'trunk', which is not a module of movenet-heatmap-edge" in err
    assert "calibration set" not in err and not (tmp_path / "b").exists()


def test_a_movenet_student_with_its_decoder_in_the_graph_quantizes_its_trunk(tmp_path_factory):
    """The top-down student's default scope through an ONNX graph that wraps the network with its decoder
    ('/model/backbone/...'): the trunk's convs are INT8 from its second block on; the stem's, the first block's,
    the pyramid's and the head's are float."""
    import onnx

    builds = target_builds("onnx", "movenet-heatmap-edge", tmp_path_factory)
    scope = resolve_int8_modules(builds.model, None)
    b = builds.build("default-scope", "int8", int8_modules=scope)
    assert b.manifest["spec"]["decode"] == "graph"
    graph = onnx.load(str(b.path / "model.onnx")).graph
    dq_outputs = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    convs = {n.name: n.input[1] in dq_outputs for n in graph.node if n.op_type == "Conv"}
    trunk = [q for name, q in convs.items() if name.startswith("/model/backbone/") and in_scope(name, scope)]
    start = [q for name, q in convs.items() if name.startswith(("/model/backbone/stem/", "/model/backbone/blocks.0/"))]
    rest = [q for name, q in convs.items() if name.startswith(("/model/fpn/", "/model/kpt_heatmap/"))]
    assert trunk and all(trunk) and len(start) == 3 and not any(start) and rest and not any(rest)


def test_int8_modules_with_another_precision_is_said_to_be_ignored(tmp_path):
    import edgepose

    lines: list[str] = []
    edgepose.export(create(MODELS[0]), target="onnx", out=tmp_path / "b", int8_modules="features",
                    log=lines.append)
    assert any(ln == "int8_modules ignored: precision fp32 quantizes no module" for ln in lines)


def test_onnxruntime_runs_the_float_layers_fed_by_int8_ones_in_float(tmp_path_factory):
    """A conv kept float inside the INT8 trunk (what ``--auto-mixed`` does) reads a DequantizeLinear and feeds a
    QuantizeLinear; ONNX Runtime's WeightBiasQuantization would give it per-tensor int8 weights at session load (on
    this model: the median joint 34 px off instead of 0.8). The runtime's session turns it off, so the conv computes
    the float convolution of its dequantized input."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import numpy_helper

    from edgepose.runtimes.onnxruntime import open_session

    builds = target_builds("onnx", "movenet-heatmap-edge", tmp_path_factory)
    first = "/model/backbone/blocks.0/depthwise/conv/Conv"
    b = builds.build("first-depthwise-float", "int8", exclude=(first,), int8_modules=("backbone",))
    model = onnx.load(str(b.path / "model.onnx"))
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    conv = next(n for n in model.graph.node if n.name == first)
    assert conv.input[0] in dq_outputs and conv.input[1] in weights  # float weights between Q/DQ pairs
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in (conv.input[0], conv.output[0]))
    path = b.path.parent / "lateral-outputs.onnx"
    onnx.save(model, str(path))
    x = next(builds.calib.batches())[:1]

    def lateral_error(sess) -> float:
        inp, out = sess.run([conv.input[0], conv.output[0]], {sess.get_inputs()[0].name: x})
        bias = torch.from_numpy(weights[conv.input[2]]) if len(conv.input) > 2 else None
        ref = torch.nn.functional.conv2d(torch.from_numpy(inp), torch.from_numpy(weights[conv.input[1]]), bias,
                                         stride=attrs["strides"], padding=attrs["pads"][:2], groups=attrs["group"])
        return float(np.abs(out - ref.numpy()).max() / np.abs(ref.numpy()).max())

    ours = lateral_error(open_session(path, threads=1))
    onnxruntime_default = lateral_error(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))
    assert ours < 1e-5, ours
    assert onnxruntime_default > 1e-3, "ONNX Runtime no longer re-quantizes the float convs fed by a DQ?"
