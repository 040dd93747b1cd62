"""``edgepose models`` and ``edgepose doctor``."""

from __future__ import annotations

import importlib.metadata
import platform
import re

from edgepose.backends import backends
from edgepose.commands.base import command
from edgepose.errors import ConfigError

# (distribution, edgepose extra that installs it): the export tools, every backend's distributions in the backend
# registry's order, then the rest
PACKAGES = [("torch", "export"), ("onnx", "export"), ("litert-torch", "export"),
            *((d, b.extra) for b in backends() for d in b.distributions), ("pycocotools", "eval"),
            ("opencv-python-headless", "core"), ("numpy", "core"), ("matplotlib", "report")]


def _models_args(p) -> None:
    p.add_argument("pattern", nargs="?", default=None, help="only the models whose name contains this")
    p.add_argument("--cost", action="store_true",
                   help="also build each model once and print its input size (width x height, pixels), parameters "
                        "(millions) and multiply-accumulates of one batch-1 forward pass (GMAC, 1e9; convolutions "
                        "and linear layers): the work INT8 speeds up and a CPU's peak bounds")


@command("models", "list the registered models (and which have embedded default weights)")(_models_args)
def run_models(args) -> int:
    from edgepose.models import get_factory, list_models
    from edgepose.weights import DEFAULTS

    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"no registered model name contains {args.pattern!r}; expected part of a registered name "
                          "(`edgepose models` lists them all)")
    for name in names:
        doc = (get_factory(name).__doc__ or "").strip().splitlines()[0]
        mark = " [default weights]" if name in DEFAULTS else ""
        print(f"{name:28s} {_cost_columns(name) if args.cost else ''}{doc}{mark}")
    return 0


def _cost_columns(name: str) -> str:
    from edgepose.models import create
    from edgepose.models.cost import model_cost

    cost = model_cost(create(name))
    w, h = cost.input_size
    return f"{f'{w}x{h}':>9s} {cost.params / 1e6:7.2f} M {cost.gmacs:7.3f} GMAC  "


@command("doctor", "show installed backends with versions and what each target needs")(lambda p: None)
def run_doctor(args) -> int:
    print(f"python {platform.python_version()} on {platform.machine()} ({platform.system()})")
    for pkg, extra in PACKAGES:
        try:
            version = importlib.metadata.version(pkg)
            state = f"{version}"
        except importlib.metadata.PackageNotFoundError:
            state = _missing_hint(pkg, extra)
        print(f"  {pkg:24s} {state}")
    _print_device()
    return 0


def _missing_hint(pkg: str, extra: str) -> str:
    if extra == "core":
        return "MISSING"
    if pkg == "tflite-runtime":  # the fallback interpreter for devices where ai-edge-litert has no wheel
        try:
            importlib.metadata.version("ai-edge-litert")
            return "not installed (not needed: ai-edge-litert runs TFLite)"
        except importlib.metadata.PackageNotFoundError:
            pass
    if pkg == "tensorrt":
        from edgepose.runtimes.tensorrt import TRT_MISSING

        return "not installed" + TRT_MISSING.removeprefix("tensorrt is not installed")
    return f"not installed (pip install 'edgepose[{extra}]')"


def _print_device() -> None:
    from edgepose.devices import fingerprint, get_profile

    fp = fingerprint()
    print(f"device: {fp['label']}")
    print(f"  ISA flags: {' '.join(fp['isa']) or 'none of interest'}")
    if fp["profile"]:
        p = get_profile(fp["profile"])
        print(f"  profile: {p.name} ({p.title}: {p.target} {p.precision}); see `edgepose devices`")
    else:
        print("  profile: none matches this machine; see `edgepose devices`")
    from edgepose.devices.recommend import recommend

    for line in recommend(fp["profile"]).lines():
        print(line)


def _info_args(p) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="a bundle folder (from `edgepose export` or `edgepose import`)")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")


@command("info", "show what a bundle holds: target, precision, input, decode, accuracy gate, files (verified)")(
    _info_args)
def run_info(args) -> int:
    import json

    from edgepose.bundle import read_bundle

    b = read_bundle(args.bundle)  # verifies every file's sha256: a tampered bundle is an error here too
    if args.json:
        print(json.dumps(b.manifest, indent=2, sort_keys=True))
        return 0
    for line in bundle_summary(b.manifest):
        print(line)
    total = sum(f.get("bytes", 0) for f in b.manifest["files"].values())
    print(f"files: {len(b.manifest['files'])}, {total / 2**20:.2f} MiB, sha256 verified")
    return 0


def bundle_summary(m: dict) -> list[str]:
    """Human lines for a manifest: what it is, how it was made, what its gates said."""
    spec, model = m["spec"], m.get("model") or {}
    inp = spec["input"]
    lines = [f"model: {model.get('name', '?')} ({spec['kind']}, keypoints {spec.get('keypoints', '?')})",
             f"target: {m['target']} on {m['backend']} {m.get('backend_version') or ''}".rstrip()
             + f", precision {m['precision']}, edgepose {m.get('edgepose_version', '?')}",
             f"input: {inp['size'][0]}x{inp['size'][1]} (w x h) {inp.get('layout')} {inp.get('dtype')}; decode: "
             f"{spec.get('decode')}" + (f" ({spec['codec'].get('method')})" if spec.get("codec", {}).get("method")
                                         else "")]
    if model.get("imported_from"):
        lines.append(f"imported from: {model['imported_from']}")
    if model.get("cost"):
        cost = model["cost"]
        lines.append(f"cost: {cost['macs'] / 1e9:.3f} GMAC (multiply-accumulates of one batch-1 pass at "
                     f"{cost['input_size'][0]}x{cost['input_size'][1]}), {cost['params'] / 1e6:.2f} M parameters")
    if m.get("device_profile"):
        dp = m["device_profile"]
        lines.append(f"device profile: {dp.get('name')} (threads {dp.get('threads') or 'all cores'})")
    parity = m.get("parity") or {}
    if "passed" in parity:
        lines.append(f"parity vs PyTorch: {'passed' if parity['passed'] else 'FAILED'} (keypoints max error "
                     f"{parity.get('keypoint_px_error', float('nan')):.4f} px)")
    lines += _accuracy_lines(m.get("accuracy"), m.get("quantization"))
    golden = m.get("golden") or {}
    if "file" in golden:
        tol, kib = golden.get("tolerances") or {}, golden.get("bytes", 0) / 1024
        lines.append(f"golden samples: {len(golden.get('samples', []))} ({kib:.0f} KiB, reference "
                     f"{golden.get('reference_backend')}; tolerances: inference {100 * tol.get('relative', 0):g} % of "
                     f"range, keypoints {tol.get('px')} px) — check this device with `edgepose verify`")
    elif golden.get("skipped"):
        lines.append(f"golden samples: none ({golden['skipped']})")
    return lines


def _compact(names: list) -> str:
    """'backbone.blocks.1', …, 'backbone.blocks.16', 'backbone.last' → 'backbone.blocks.1-16, backbone.last'."""
    runs: list[list] = []  # [prefix, first, last] for numbered names in a row; [name] otherwise
    for name in map(str, names):
        numbered = re.fullmatch(r"(.+)\.(0|[1-9][0-9]*)", name)
        if numbered and runs and len(runs[-1]) == 3 and runs[-1][0] == numbered[1] \
                and runs[-1][2] + 1 == int(numbered[2]):
            runs[-1][2] = int(numbered[2])
        else:
            runs.append([numbered[1], int(numbered[2]), int(numbered[2])] if numbered else [name])
    return ", ".join(r[0] if len(r) == 1 else f"{r[0]}.{r[1]}" + (f"-{r[2]}" if r[2] > r[1] else "") for r in runs)


def _accuracy_lines(acc, quant) -> list[str]:
    lines = []
    if isinstance(quant, dict) and quant.get("calibration"):
        cal = quant["calibration"]
        parts = f" from {len(cal['sources'])} videos / sources" if isinstance(cal.get("sources"), list) else ""
        lines.append(f"calibration: {cal.get('source')} ({cal.get('size')} samples{parts}), "
                     f"{quant.get('tool', '')}".rstrip(", "))
    scope = quant.get("int8_modules") if isinstance(quant, dict) else None
    if isinstance(scope, list) and scope:
        lines.append(f"int8 modules: {_compact(scope)} (every other op float)")
    off = quant.get("onnxruntime_disabled_optimizers") if isinstance(quant, dict) else None
    if off and (quant.get("kept_float") or isinstance(scope, list)):
        lines.append(f"onnxruntime: open the model with disabled_optimizers={off} (edgepose's runtime does); with "
                     "ORT's defaults, float layers between INT8 ones get per-tensor int8 weights")
    if not isinstance(acc, dict):
        return lines
    if "skipped" in acc:
        return [*lines, f"accuracy gate: skipped ({acc['skipped']})"]
    verdict = "passed" if acc.get("passed") else ("FAILED, written with --allow-accuracy-drop" if acc.get("overridden")
                                                  else "FAILED")
    ci = acc.get("ap_drop_interval95")
    spread = f", 95 % interval {ci[0]} to {ci[1]}" if isinstance(ci, list) and len(ci) == 2 else ""
    free = acc.get("gate") == "label-free"
    lines.append(f"accuracy gate{' (label-free)' if free else ''}: {verdict}: AP {acc.get('ap')} vs fp32 "
                 f"{acc.get('ap_reference')}{' on its own predictions' if free else ''} (drop {acc.get('ap_drop')}"
                 f"{spread}, limit {acc.get('max_ap_drop')}) on {acc.get('num_images')} "
                 f"{'frames' if free else 'images'} of {acc.get('val')}")
    if free:
        lines += _label_free_lines(acc)
    lines += [f"  note: {n}" for n in acc.get("notes") or []]
    return lines


def _label_free_lines(acc: dict) -> list[str]:
    """What a label-free gate compared: pseudo-labels and keypoint displacement percentiles."""
    pseudo = acc.get("pseudo_labels") or {}
    pct = [acc.get(f"keypoint_error_px_p{q}") for q in (50, 90, 99)]
    moved = ("n/a" if None in pct else f"p50 {pct[0]} px, p90 {pct[1]} px, p99 {pct[2]} px")
    return [f"  pseudo-labels: {pseudo.get('people', '?')} people, {pseudo.get('joints', '?')} joints the fp32 model "
            f"scores >= {pseudo.get('score_floor', '?')}; the fp32 reference scores 100 against them by construction",
            f"  keypoints moved: {moved} (mean {acc.get('mean_keypoint_error_px')} px)"]
