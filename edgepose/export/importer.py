"""``edgepose import``: wrap a foreign pre-built model (.onnx, .tflite, OpenVINO .xml) in a bundle.

The input and output shapes are read from the file with the backend that will run it, the manifest
records what the user declared (output kind, keypoint schema, normalisation), and the bundle is loaded
once before it is committed, so a corrupt file never becomes a bundle.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgepose.backends import backends, native_backend
from edgepose.errors import BundleError, ConfigError, DataError, EdgeposeError
from edgepose.heads import get_head
from edgepose.pipeline.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec

# model file suffix → target, from the backends that take foreign files (edgepose.backends)
FORMATS = {b.import_suffix: b.target for b in backends() if b.import_suffix}
_READERS: dict = {}  # target → function(path) -> (input shape, input dtype, output shapes)


def _reads(target: str):
    def register(fn):
        _READERS[target] = fn
        return fn

    return register


@_reads("onnx")
def _io_onnx(path: Path) -> tuple[list[int], str, list[list[int]]]:
    from edgepose.utils.lazy import require

    ort = require("onnxruntime", "importing an ONNX model")
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise BundleError(f"onnxruntime cannot load {path}: {str(exc).splitlines()[0][:200]}") from None
    i = sess.get_inputs()[0]
    dtype = {"tensor(float)": "float32", "tensor(uint8)": "uint8"}.get(i.type, i.type)
    shape = [d if isinstance(d, int) else -1 for d in i.shape]
    return shape, dtype, [[d if isinstance(d, int) else -1 for d in o.shape] for o in sess.get_outputs()]


@_reads("tflite")
def _io_tflite(path: Path) -> tuple[list[int], str, list[list[int]]]:
    from edgepose.runtimes.tflite import interpreter_class

    try:
        interp = interpreter_class()(model_path=str(path), num_threads=1)
    except (ValueError, RuntimeError) as exc:
        raise BundleError(f"cannot load TFLite model {path}: {str(exc).splitlines()[0][:200]}") from None
    inp = interp.get_input_details()[0]
    outs = [list(map(int, o["shape"])) for o in interp.get_output_details()]
    return list(map(int, inp["shape"])), inp["dtype"].__name__, outs


def _weight_precision(target: str, path: Path) -> str:
    """int8 / fp16 / fp32 from the weights' element types (most common wins); "unknown" where not read."""
    from collections import Counter

    counts: Counter = Counter()
    if target == "tflite":
        from edgepose.runtimes.tflite import interpreter_class

        interp = interpreter_class()(model_path=str(path), num_threads=1)
        for t in interp.get_tensor_details():
            if len(t["shape"]) == 4:  # conv / depthwise kernels (and 4-D activations: same precision)
                counts[t["dtype"].__name__] += 1
    elif target == "onnx":
        import onnx

        for init in onnx.load(str(path), load_external_data=False).graph.initializer:
            if len(init.dims) == 4:
                counts[onnx.helper.tensor_dtype_to_np_dtype(init.data_type).name] += 1
    if not counts:
        return "unknown"
    top = counts.most_common(1)[0][0]
    return {"int8": "int8", "uint8": "int8", "float16": "fp16", "float32": "fp32"}.get(top, "unknown")


@_reads("openvino")
def _io_openvino(path: Path) -> tuple[list[int], str, list[list[int]]]:
    from edgepose.utils.lazy import require

    ov = require("openvino", "importing an OpenVINO model")
    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:
        raise BundleError(f"OpenVINO cannot read {path}: {str(exc).splitlines()[0][:200]}") from None

    def dims(ps) -> list[int]:
        return [d.get_length() if d.is_static else -1 for d in ps]

    inp = model.inputs[0]
    dtype = {"f32": "float32", "u8": "uint8"}.get(inp.get_element_type().get_type_name(), "float32")
    return dims(inp.get_partial_shape()), dtype, [dims(o.get_partial_shape()) for o in model.outputs]


def _input_spec(shape, dtype, input_size, layout, dtype_arg, mean, std, to_rgb) -> InputSpec:
    if len(shape) != 4:
        raise ConfigError(f"model input has shape {shape}; expected a 4-D image batch (NCHW or NHWC)")
    if layout is not None:
        channels = shape[3] if layout == "NHWC" else shape[1]
        if channels not in (3, -1):
            raise ConfigError(f"--layout {layout}: the model's input {shape} has {channels} channels there; "
                              f"expected 3 (the input looks {'NCHW' if layout == 'NHWC' else 'NHWC'})")
    layout = layout or ("NHWC" if shape[-1] == 3 else "NCHW")
    h, w = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
    if input_size is not None:
        if -1 not in (h, w) and (int(input_size[0]), int(input_size[1])) != (w, h):
            raise ConfigError(f"--input-size {tuple(input_size)} does not match the model's input {w}x{h}")
        w, h = int(input_size[0]), int(input_size[1])
    if w < 1 or h < 1:
        raise ConfigError(f"model input {shape} has a dynamic size; pass --input-size W H")
    if dtype_arg is not None and dtype in ("float32", "uint8") and dtype_arg != dtype:
        raise ConfigError(f"--dtype {dtype_arg}: the model's input is {dtype}; expected --dtype {dtype} or none")
    dtype = dtype_arg or dtype
    if dtype not in ("float32", "uint8"):
        raise ConfigError(f"model input dtype is {dtype}; supported: float32, uint8")
    return InputSpec(size=(w, h), mean=tuple(mean or IMAGENET_MEAN), std=tuple(std or IMAGENET_STD),
                     layout=layout, to_rgb=to_rgb, dtype=dtype)


def import_model(model_file: str | Path, *, kind: str, out: str | Path, keypoints: str = "coco",
                 input_size=None, layout=None, dtype=None, mean=None, std=None, to_rgb: bool = True,
                 heatmap_method: str = "argmax"):
    """Write a bundle around ``model_file``; returns the Bundle. ``heatmap_method``: how heatmaps are decoded
    (argmax + quarter offset, dark or udp: match what the model was trained / evaluated with)."""
    from edgepose.bundle import Bundle, bundle_writer, sha256_file, write_manifest
    from edgepose.keypoints import get_schema
    from edgepose.runtimes import load as load_bundle
    from edgepose.runtimes.spec import ModelSpec

    src = Path(model_file)
    if src.is_dir():
        hint = " (a bundle: it can be run and benched as it is)" if (src / "manifest.json").is_file() else ""
        raise DataError(f"{src} is a directory{hint}; expected a model file ({', '.join(FORMATS)})")
    if not src.is_file():
        raise DataError(f"model file not found: {src}")
    target = FORMATS.get(src.suffix.lower())
    if target is None:
        raise ConfigError(f"{src.name}: unsupported model format {src.suffix!r}; expected one of {', '.join(FORMATS)}")
    schema = get_schema(keypoints)
    shape, file_dtype, outputs = _READERS[target](src)
    inp = _input_spec(shape, file_dtype, input_size, layout, dtype, mean, std, to_rgb)
    head = get_head(kind)
    codec = head.import_codec(inp, outputs, schema.num_keypoints, heatmap_method)
    spec = ModelSpec(kind=kind, input=inp, keypoints=schema.name, codec=codec,
                     decode="host")
    backend = native_backend(target).name
    with bundle_writer(out) as tmp:
        shutil.copyfile(src, tmp / src.name)
        if target == "openvino" and src.with_suffix(".bin").is_file():
            shutil.copyfile(src.with_suffix(".bin"), tmp / src.with_suffix(".bin").name)
        manifest = {"target": target, "backend": backend, "backend_version": None,
                    "precision": _weight_precision(target, src),
                    "spec": spec.to_dict(), "model_file": src.name, "quantization": None,
                    "model": {"name": src.stem, "imported_from": str(src.resolve()), "source_sha256": sha256_file(src)},
                    "foreign_io": {"input": shape, "input_dtype": file_dtype, "outputs": outputs}}
        manifest = write_manifest(tmp, manifest)
        try:  # a file the backend cannot run never becomes a bundle
            with load_bundle(tmp) as rt:
                head.check_import(rt)
                manifest["golden"] = _golden(rt, tmp, manifest["precision"])
        except EdgeposeError as exc:
            raise type(exc)(str(exc).replace(str(tmp), str(Path(out)))) from None
        manifest = write_manifest(tmp, manifest)
    return Bundle(Path(out), manifest)


def _golden(rt, bundle_dir: Path, precision: str) -> dict:
    """Golden samples for `edgepose verify` (synthetic figures: an imported model comes without images)."""
    from edgepose import golden
    from edgepose.export.samples import sample_images

    arrays, entry = golden.record(rt, sample_images(rt.spec), precision=precision)
    return golden.write(bundle_dir, arrays, entry)


