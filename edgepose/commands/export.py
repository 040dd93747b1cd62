"""``edgepose export``, ``edgepose import`` and ``edgepose build``."""

from __future__ import annotations

import json
from pathlib import Path

from edgepose.backends import target_names
from edgepose.commands.base import command
from edgepose.devices.profiles import apply_profile, list_profiles
from edgepose.errors import ConfigError
from edgepose.export.options import CalibMethod, DecodePlace, ParityOptions, Precision, QuantOptions
from edgepose.heads import byo_kinds, import_kinds

TARGET_NAMES = (*target_names(), "all")


def _export_args(p) -> None:
    p.add_argument("--model", required=True,
                   help="registered model name (embedded default weights when it has them), an edgepose checkpoint "
                        "(.pt), or path/to/file.py:factory for your own nn.Module "
                        "(with --head/--keypoints/--input-size)")
    p.add_argument("--weights", default=None, help="'default' or a state_dict checkpoint for --model")
    p.add_argument("--target", default=None,
                   help=f"one of {', '.join(TARGET_NAMES)}; required unless --device gives it")
    p.add_argument("--device", default=None, metavar="PROFILE",
                   help=f"device profile the bundle is for: {', '.join(list_profiles())}, or auto (this machine; "
                        "see `edgepose devices`). Fills in --target and --precision when not given, prints why, "
                        "and refuses choices the device cannot run (e.g. int8 on a Jetson Nano)")
    p.add_argument("--precision", default=None, choices=[p.value for p in Precision],
                   help="None = the --device profile's precision, else fp32. "
                        "Numeric precision of the deployed model (see the target's support in the docs); int8 needs "
                        "--calib; fp16 and int8 bundles pass the accuracy gate (--max-ap-drop) instead of parity. "
                        "fp16 pays off on GPUs "
                        "(TensorRT, TFLite GPU delegate) and OpenVINO (bf16/f16 CPUs); TFLite on a CPU "
                        "(XNNPACK) only gets a smaller file, and the onnx target has no fp16")
    _quant_args(p)
    p.add_argument("--decode", default=DecodePlace.AUTO.value, choices=[d.value for d in DecodePlace],
                   help="where keypoints are decoded: inside the exported graph, on the host in numpy, or "
                        "auto: in the graph (DARK / UDP refinement included), except for DARK / UDP at OpenVINO "
                        "fp16 and TensorRT fp16 / int8, TFLite fp16 and TFLite's SimCC / PAF / AE models, which "
                        "decode on the host (on TFLite's CPU the graph decode made whole frames 5-18 %% faster; "
                        "the MoveNet MultiPose decode takes 0.2 ms in the graph, 4.8 ms on the host)")
    p.add_argument("--dla-core", type=int, default=None, metavar="N",
                   help="TensorRT: build the engine for DLA core N (Xavier, Orin NX / AGX; fp16 / int8; layers the "
                        "DLA cannot run fall back to the GPU)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--dynamic-batch", action="store_true", help="dynamic batch axis (ONNX / OpenVINO / TensorRT)")
    p.add_argument("--samples", default=None,
                   help="COCO json or image folder for the parity gate and the bundle's golden samples (the first 3 "
                        "images, for `edgepose verify`; default: synthetic figures)")
    p.add_argument("--no-parity", action="store_true", help="skip the PyTorch parity gate (not recommended)")
    p.add_argument("--head", choices=byo_kinds(), help="output kind of your own model")
    p.add_argument("--keypoints", default=None, help="keypoint schema of your own model: coco or mpii")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("W", "H"), help="input size of your own model (px)")
    p.add_argument("--output", default=None, metavar="NAME_OR_INDEX",
                   help="your own model returns several outputs (tuple, list or dict): the index or dict key of the "
                        "map to export (default: the only output that fits --head; its layout, NCHW or NHWC, and its "
                        "stride, 1, 2, 4 or 8, are read from a dry run)")
    p.add_argument("--out", required=True, help="bundle directory (for --target all: one sub-directory per target)")
    p.set_defaults(_usage_error=p.error)  # a missing --target (without --device) stays an argparse usage error


def _quant_args(p) -> None:
    """Calibration and accuracy-gate options of ``edgepose export``."""
    p.add_argument("--calib", default=None, metavar="SOURCE", nargs="+", action="extend",
                   help="calibration data for int8: an image folder, a video file, a folder of videos (and images), "
                        "a COCO json (person boxes → top-down crops) or synthetic[:N]; several sources as several "
                        "values (--calib a.mp4 b.mp4, or --calib a.mp4 --calib b.mp4). Samples are shared evenly "
                        "across the videos and spread over each one's whole length; preprocessed exactly as the "
                        "runtime does")
    p.add_argument("--calib-size", type=int, default=None, metavar="N",
                   help="calibration samples to use; None = 128 (fewer than 32 gives a warning)")
    p.add_argument("--calib-method", default=CalibMethod.MINMAX.value, choices=[m.value for m in CalibMethod],
                   help="activation ranges where the target offers a choice (ONNX Runtime, TensorRT Q/DQ): minmax or "
                        "percentile (99.999). Entropy is not offered: it clipped heatmap logits to uselessness in "
                        "our measurements")
    p.add_argument("--val", default=None, metavar="SOURCE", nargs="+", action="extend",
                   help="held-out data for the accuracy gate: labelled (a COCO json, coco:ANN.json[:IMG_DIR] or "
                        "synthetic-val[:N]) or unlabelled frames (an image folder, a video, a folder of videos, or "
                        "several as several values): then the gate is label-free, scoring the quantized model "
                        "against the fp32 model's own predictions (OKS AP, the drop's interval, keypoint "
                        "displacement p50 / p90 / p99 in px); default: the COCO calibration images calibration did "
                        "not use, else synthetic-val:300 (the gate reports the drop's 95 %% interval; at 100 images "
                        "it spanned the 1.0 limit for every INT8 target of the default model)")
    p.add_argument("--val-size", type=int, default=None, metavar="N",
                   help="frames of unlabelled --val to gate on, shared evenly across its videos; None = 100")
    p.add_argument("--max-ap-drop", type=float, default=1.0, metavar="POINTS",
                   help="largest OKS AP drop vs the fp32 model, in AP points (1.0 = 0.01 AP), before export fails")
    p.add_argument("--auto-mixed", action="store_true",
                   help="when the gate fails, rank the quantized layers by their effect on the output and keep the "
                        "most harmful ones in float until it passes (ONNX Runtime, TensorRT Q/DQ, OpenVINO)")
    p.add_argument("--int8-modules", nargs="+", default=None, metavar="MODULE",
                   help="the PyTorch modules INT8 quantizes (e.g. backbone, or backbone.features); every other op "
                        "stays float. 'all' = the whole network. Default: the model's own choice "
                        "(the MoveNet models: backbone, their stride-4 pyramid and heads float), else all")
    p.add_argument("--allow-accuracy-drop", action="store_true",
                   help="write the bundle even when the accuracy gate fails (the manifest records the drop)")


def _one_or_many(values: list[str] | None):
    """One --calib / --val value as itself (as before), several as a list, none as None."""
    return values[0] if values and len(values) == 1 else values


def _calib_and_val(args):
    """(calib, val) for export(): one value as itself (as before), several as a list; --val checked before any
    export work (labelled data, or unlabelled frames for the label-free gate)."""
    calib, val = _one_or_many(args.calib), _one_or_many(args.val)
    if args.val is not None or args.val_size is not None:
        from edgepose.calibration.label_free import check_val

        check_val(val, args.val_size, "--val")
    return calib, val


def _options(args):
    """(QuantOptions, ParityOptions) from the command line, checked before any export work."""
    calib, val = _calib_and_val(args)
    quant = QuantOptions(calib=calib, calib_size=args.calib_size, method=args.calib_method, val=val,
                         val_size=args.val_size, max_ap_drop=args.max_ap_drop, auto_mixed=args.auto_mixed,
                         allow_accuracy_drop=args.allow_accuracy_drop, int8_modules=args.int8_modules)
    return quant, ParityOptions(enabled=not args.no_parity)


def _load_user_model(spec: str, args):
    """``path/to/file.py:factory`` → the nn.Module the factory returns."""
    import importlib.util

    path, _, factory = spec.rpartition(":")
    if not Path(path).is_file():
        raise ConfigError(f"--model {spec!r}: {path} does not exist; expected path/to/file.py:factory")
    mod_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    if mod_spec is None or not factory:
        raise ConfigError(f"--model {spec!r}: expected path/to/file.py:factory (a Python file and a function in it)")
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 — the user's file: report it in one line
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) else ""
        raise ConfigError(f"--model {spec!r}: importing {path} failed{where}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not hasattr(module, factory):
        raise ConfigError(f"--model {spec!r}: {path} has no attribute {factory!r}")
    model = getattr(module, factory)()
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"--model {spec!r}: {factory}() returned {type(model).__name__}; expected a torch.nn.Module")
    if args.weights:
        from edgepose.models.checkpoint import load_state_dict_file

        load_state_dict_file(model, args.weights)
    return model.eval()


@command("export", "export a model to deployment bundles (ONNX, OpenVINO, TFLite, TensorRT)")(_export_args)
def run_export(args) -> int:
    from edgepose.devices import profile_for
    from edgepose.export.api import export
    from edgepose.export.targets import get_target
    from edgepose.models.checkpoint import load_model

    profile = profile_for(args.device) if args.device else None
    if args.target is None and profile is None:
        args._usage_error("the following arguments are required: --target (or --device PROFILE)")
    if args.target not in (None, "all"):
        get_target(args.target)  # unknown target → close-match error before any work
    precision_given = args.precision is not None
    if profile is None:
        args.precision = args.precision or "fp32"
    else:
        resolved = apply_profile(profile, target=args.target, precision=args.precision, threads=None)
        args.target, args.precision = resolved.target, resolved.precision
        for note in resolved.notes:
            print(f"note: {note}")
    if args.precision == "int8" and not args.calib:
        source = "--precision int8" if precision_given else f"--device {profile.name} (int8)"
        hint = "" if precision_given else ", or choose --precision fp16/fp32"
        raise ConfigError(f"{source} needs --calib SOURCE (an image folder, a video, a COCO json or "
                          f"synthetic[:N], or several){hint}; nothing was written")
    if args.dla_core is not None and (args.target != "tensorrt" or args.precision == "fp32" or args.dla_core < 0):
        raise ConfigError(f"--dla-core {args.dla_core}: expected a core number >= 0 with --target tensorrt and "
                          f"--precision fp16 or int8 (got --target {args.target}, --precision {args.precision})")
    quant, parity = _options(args)
    if ".py:" in args.model:
        model = _load_user_model(args.model, args)
    else:
        own = [f for f, v in (("--head", args.head), ("--keypoints", args.keypoints),
                              ("--input-size", args.input_size), ("--output", args.output)) if v is not None]
        if own:
            raise ConfigError(f"{', '.join(own)} given with --model {args.model}, which carries its own; expected "
                              "them only with path/to/file.py:factory (your own nn.Module)")
        model = load_model(args.model, args.weights)
    result = export(model, target=args.target, out=args.out, precision=args.precision, decode=args.decode,
                    quant=quant, parity=parity, opset=args.opset, dynamic_batch=args.dynamic_batch,
                    samples=args.samples, head=args.head, keypoints=args.keypoints, input_size=args.input_size,
                    output=args.output,
                    **({"device_profile": {"name": profile.name, "threads": profile.threads}} if profile else {}),
                    **({"dla_core": args.dla_core} if args.dla_core is not None else {}))
    bundles = result if isinstance(result, dict) else {args.target: result}
    for target, b in bundles.items():
        acc = b.manifest.get("accuracy") or {}
        gate = f", AP drop {acc['ap_drop']:.2f}" if "ap_drop" in acc else ""
        if acc.get("passed") is False:
            gate += " — GATE FAILED, written because of --allow-accuracy-drop"
        print(f"{target:9s} {b.path}  ({b.manifest['precision']}, decode={b.manifest['spec']['decode']}{gate})")
    return 0


def _import_args(p) -> None:
    p.add_argument("model_file", metavar="MODEL_FILE", help="a .onnx, .tflite or OpenVINO .xml file")
    p.add_argument("--kind", required=True, choices=import_kinds(),
                   help="output kind: heatmaps (N,K,H,W), the 6 CenterNet maps, or regression keypoints "
                        "(N,1,K,3) y, x, score normalised to [0, 1] (MoveNet)")
    p.add_argument("--keypoints", default="coco", help="keypoint schema: coco or mpii")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("W", "H"), help="input width and height in px "
                   "(default: read from the model file)")
    p.add_argument("--layout", choices=("NCHW", "NHWC"), default=None, help="input layout (default: from the file)")
    p.add_argument("--dtype", choices=("float32", "uint8"), default=None, help="input dtype (default: from the file)")
    p.add_argument("--mean", type=float, nargs=3, default=None, help="RGB mean on [0, 1] pixels (float inputs)")
    p.add_argument("--std", type=float, nargs=3, default=None, help="RGB std on [0, 1] pixels (float inputs)")
    p.add_argument("--bgr", action="store_true", help="the model takes BGR input (default RGB)")
    p.add_argument("--heatmap-method", choices=("argmax", "dark", "udp"), default="argmax",
                   help="--kind heatmap: decode by argmax + quarter offset, or the DARK / UDP sub-pixel refinement "
                        "(use what the model was trained and evaluated with)")
    p.add_argument("--out", required=True, help="bundle directory to write")


@command("import", "wrap a foreign .onnx / .tflite / OpenVINO .xml model in a bundle")(_import_args)
def run_import(args) -> int:
    from edgepose.export.importer import import_model

    b = import_model(args.model_file, kind=args.kind, keypoints=args.keypoints, out=args.out,
                     input_size=args.input_size, layout=args.layout, dtype=args.dtype, mean=args.mean,
                     std=args.std, to_rgb=not args.bgr, heatmap_method=args.heatmap_method)
    print(json.dumps({"bundle": str(b.path), "target": b.target, "input": b.manifest["spec"]["input"]}, indent=2))
    return 0


def _build_args(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="a TensorRT bundle made by `edgepose export --target tensorrt`")
    p.add_argument("--force", action="store_true", help="rebuild even when a matching cached engine exists")


@command("build", "TensorRT: build and cache the engine for this device ahead of the first load")(_build_args)
def run_build(args) -> int:
    from edgepose.runtimes.tensorrt import build_engine

    path = build_engine(args.bundle, force=args.force)
    print(f"engine: {path}")
    return 0
