"""``edgepose verify``: run a bundle's golden samples (:mod:`edgepose.golden`) on this device and say, stage by
stage, where it deviates from the machine that exported it.

Stages, each judged against the manifest's tolerances for the bundle's precision:

- ``preprocess``: this device's crops of the stored images vs the stored crops, in grey levels (another OpenCV
  build or CPU rounds the bilinear warp differently), and the normalised tensor's checksum;
- ``inference``: the model on the *stored* crops' tensor vs the stored output digest, as a share of the
  output's range (other kernels, another delegate, a damaged model file);
- ``decode``: keypoints decoded on this device from those outputs vs the stored ones, in input pixels;
- ``end-to-end``: the whole pipeline on the stored images vs the stored keypoints, in input pixels (image
  pixels divided by the crop's scale) — what a user sees.

Keypoints are compared where the reference scores at least ``score_min`` (0.3; 0.5 for INT8 bundles, whose
maps move more under noise): weaker joints are coin tosses the decoder marks with a low score. Device side:
numpy, OpenCV and the bundle's backend.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgepose import golden
from edgepose.errors import BundleError
from edgepose.pipeline.preprocess import to_tensor


@dataclass
class Stage:
    name: str
    passed: bool
    summary: str
    numbers: dict = field(default_factory=dict)
    deviates: bool = False  # differs from the reference at all (within tolerance or not)


@dataclass
class VerifyReport:
    bundle: str
    backend: str
    device: str
    samples: int
    stages: list[Stage]

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.stages)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def lines(self) -> list[str]:
        out = [f"verify {self.bundle} with {self.backend} on {self.device}: {self.samples} golden samples"]
        for s in self.stages:
            mark = "ok  " if s.passed else "FAIL"
            out.append(f"  {mark} {s.name:11s} {s.summary}")
        out.append("PASSED: this device reproduces the exporting machine" if self.passed else
                   "FAILED: " + ", ".join(s.name for s in self.stages if not s.passed) + " outside tolerance")
        return out

    def to_dict(self) -> dict:
        return dict(asdict(self), passed=self.passed)


def _preprocess(spec, samples: list[dict], entry: dict, tol: dict) -> tuple[Stage, list[np.ndarray]]:
    """The preprocessing stage, and each sample's forward matrices (for the end-to-end stage's scale)."""
    total = differ = 0
    worst = 0
    tensor_mismatch = 0
    mats_all = []
    for i, s in enumerate(samples):
        crops, mats = golden.crops_for(spec, s["image"], s["boxes"])
        mats_all.append(mats)
        ref = s["crops"]
        if crops.shape != ref.shape:
            return Stage("preprocess", False, f"sample {i}: crops of shape {crops.shape}, the reference has "
                         f"{ref.shape}", deviates=True), []
        delta = np.abs(crops.astype(np.int16) - ref.astype(np.int16))
        total += delta.size
        differ += int(np.count_nonzero(delta))
        worst = max(worst, int(delta.max(initial=0)))
        if golden.tensor_sha256(to_tensor(ref, spec.input)) != entry["samples"][i]["tensor_sha256"]:
            tensor_mismatch += 1
    frac = differ / max(total, 1)
    passed = worst <= tol["levels"] and frac <= tol["fraction"] and not tensor_mismatch
    summary = (f"identical ({total:,} values)" if not differ else
               f"{differ:,} of {total:,} values differ ({100 * frac:.3f} %), by up to {worst} grey level(s)")
    if tensor_mismatch:
        summary += f"; normalisation differs on {tensor_mismatch} sample(s) (tensor checksum)"
    summary += f"   [tol ≤ {tol['levels']} level on ≤ {100 * tol['fraction']:g} %]"
    return Stage("preprocess", passed, summary, {"values": total, "differ": differ, "max_levels": worst,
                                                  "tensor_mismatch": tensor_mismatch},
                 deviates=bool(differ or tensor_mismatch)), mats_all


def _relative(ref: dict, dev: dict) -> float:
    lo, hi = float(ref["stats"][2]), float(ref["stats"][3])
    span = max(hi - lo, abs(hi), 1e-6)
    diffs = [np.abs(dev[k] - ref[k]).max(initial=0.0) for k in ("values", "top", "stats")
             if dev[k].shape == ref[k].shape]
    return float(max(diffs, default=np.inf)) / span


def _run_model(rt, spec, samples: list[dict], entry: dict) -> tuple[list, float, str]:
    """Infer on each stored crops' tensor → (outputs per sample, worst relative deviation, where)."""
    outs_all, worst, where = [], 0.0, ""
    for i, s in enumerate(samples):
        outs = rt.infer(to_tensor(s["crops"], spec.input))
        outs_all.append(outs)
        shapes = [list(np.shape(o)) for o in outs]
        expected = [o["shape"] for o in entry["samples"][i]["outputs"]]
        if shapes != expected:
            return outs_all, np.inf, f"sample {i}: outputs of shapes {shapes}, the reference has {expected}"
        for j, out in enumerate(outs):
            ref = {k: s[f"out{j}_{k}"] for k in ("values", "top", "stats")}
            rel = _relative(ref, golden.digest(out))
            if rel > worst:
                worst, where = rel, f"sample {i}, output {j}"
    return outs_all, worst, where


def _person_scale(mats: np.ndarray) -> np.ndarray:
    """Image pixels per input pixel of each person's crop (bottom-up: of the letterbox), from its forward matrix."""
    return 1.0 / np.sqrt(np.abs(np.linalg.det(mats[:, :, :2])))


def _keypoint_gap(ref: np.ndarray, dev: np.ndarray, score_min: float, scale=None,
                  match: bool = False) -> tuple[float, int, int]:
    """(largest distance over the reference's confident joints, joints compared, people missing). ``match``
    (bottom-up): pair each reference person with the closest one found here, not by position in the list."""
    if len(ref) == 0:
        return 0.0, 0, 0
    if len(dev) < len(ref):
        return np.inf, 0, len(ref) - len(dev)
    ref, dev = ref.astype(np.float64), dev.astype(np.float64)
    if match:
        dev = _match(ref, dev)
    scale = np.ones(len(ref)) if scale is None else np.broadcast_to(np.asarray(scale, np.float64), (len(ref),))
    mask = ref[..., 2] >= score_min
    dist = np.linalg.norm(ref[..., :2] - dev[..., :2], axis=-1) / scale[:, None]
    return float(dist[mask].max(initial=0.0)), int(mask.sum()), 0


def _match(ref: np.ndarray, dev: np.ndarray) -> np.ndarray:
    free = list(range(len(dev)))
    picked = []
    for person in ref:
        d = [np.nanmean(np.linalg.norm(person[:, :2] - dev[j, :, :2], axis=-1)) for j in free]
        picked.append(free.pop(int(np.argmin(d))))
    return dev[picked]


def _keypoint_stage(name: str, gaps: list, tol_px: float, note: str = "") -> Stage:
    worst = max((g[0] for g in gaps), default=0.0)
    joints = sum(g[1] for g in gaps)
    missing = sum(g[2] for g in gaps)
    passed = worst <= tol_px and not missing
    if missing:
        summary = f"{missing} reference person(s) not found"
    else:
        summary = f"confident joints within {worst:.3g} px ({joints} joints)"
    summary += f"{note}   [tol {tol_px:g} px]"
    return Stage(name, passed, summary, {"max_px": worst, "joints": joints, "missing_people": missing},
                 deviates=worst > 0 or bool(missing))


def verify_runtime(rt, bundle) -> VerifyReport:
    """Run ``bundle``'s golden samples through the loaded runtime ``rt`` (made from that bundle)."""
    entry = bundle.manifest.get("golden") or {}
    if "file" not in entry:
        why = entry.get("skipped") or "it was written before golden samples existed"
        raise BundleError(f"bundle {bundle.path} has no golden samples ({why}); re-export it to verify it")
    samples = golden.load(bundle.path, entry)
    tol, score_min, spec = entry["tolerances"], float(entry.get("score_min", golden.SCORE_MIN)), rt.spec
    pre, mats_all = _preprocess(spec, samples, entry, tol)
    outs_all, rel, where = _run_model(rt, spec, samples, entry)
    ok = rel <= tol["relative"]
    text = where if np.isinf(rel) else f"largest output difference {100 * rel:.3g} % of its range" + (
        f" ({where})" if rel > 0 else "")
    stages = [pre, Stage("inference", ok, f"{text}   [tol {100 * tol['relative']:g} %]", {"relative": rel},
                         deviates=rel > 0)]
    match = spec.bottom_up
    if np.isinf(rel):  # outputs of another shape: nothing to decode
        stages.append(Stage("decode", False, "not run: the outputs' shapes differ from the reference's", deviates=True))
    else:
        gaps = [_keypoint_gap(s["keypoints"], golden.decoded(rt, o), score_min, match=match)
                for s, o in zip(samples, outs_all)]
        stages.append(_keypoint_stage("decode", gaps, tol["px"], "" if ok else " (inference already deviates)"))
    if not mats_all:  # the crops themselves have another shape
        stages.append(Stage("end-to-end", False, "not run: the crops' shapes differ from the reference's",
                            deviates=True))
    else:
        gaps = [_keypoint_gap(s["poses"], golden.end_to_end(rt, s["image"], s["boxes"]), score_min,
                              _person_scale(m), match=match) for s, m in zip(samples, mats_all)]
        stages.append(_keypoint_stage("end-to-end", gaps, tol["px"]))
    return VerifyReport(str(bundle.path), rt.backend, _device_label(), len(samples), stages)


@functools.lru_cache(maxsize=1)
def _fingerprint() -> dict:
    """This machine's fingerprint, read once per process (the report's label and the device key both use it)."""
    from edgepose.devices import fingerprint

    return fingerprint(commands=False)


def _device_label() -> str:
    return _fingerprint()["label"]


# ---- which bundles were verified on this device -------------------------------------------------------------

def _record_path() -> Path:
    return Path(os.environ.get("EDGEPOSE_CACHE") or Path.home() / ".cache" / "edgepose") / "verified.json"


def device_key(backend: str) -> str:
    """What makes this device's results differ: CPU, ISA, OS machine, GPU and the package versions in play."""
    fp = _fingerprint()
    parts = [fp["machine"], fp["cpu_model"], fp["isa"], fp["python_bits"], fp["gpu"], backend,
             sorted(fp["versions"].items())]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def bundle_key(bundle) -> str:
    return hashlib.sha256((Path(bundle.path) / "manifest.json").read_bytes()).hexdigest()[:16]


def _read_records() -> dict:
    try:
        data = json.loads(_record_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def remember(bundle, report: VerifyReport) -> None:
    """Note the verdict for this bundle on this device (best effort: a read-only home is not an error)."""
    records = _read_records()
    key = f"{bundle_key(bundle)}:{device_key(report.backend)}"
    records[key] = {"passed": report.passed, "bundle": str(bundle.path),
                    "when": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    path = _record_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(records, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def verdict(bundle, backend: str) -> bool | None:
    """True / False: the last verify of this bundle on this device passed / failed; None: never verified."""
    rec = _read_records().get(f"{bundle_key(bundle)}:{device_key(backend)}")
    return None if rec is None else bool(rec.get("passed"))


def unverified_warning(bundle, backend: str) -> str | None:
    """One warning line for `bench` / `run` when this bundle was never verified here (or failed), else None."""
    if "file" not in (bundle.manifest.get("golden") or {}):
        return None  # nothing to verify with: bundles from before golden samples, foreign imports
    state = verdict(bundle, backend)
    if state is True:
        return None
    what = "failed `edgepose verify` on this device" if state is False else "has never been verified on this device"
    return f"bundle {bundle.path} {what}; run `edgepose verify {bundle.path}` to check it against its golden samples"


def warn_if_unverified(path, backend: str | None = None) -> None:
    """Print :func:`unverified_warning`'s line to stderr for the bundle at ``path`` (nothing when it cannot be
    read: the command that uses it reports that)."""
    import sys

    from edgepose.bundle import read_bundle
    from edgepose.errors import EdgeposeError

    try:
        bundle = read_bundle(path, verify=False)
    except (EdgeposeError, OSError):
        return
    line = unverified_warning(bundle, backend or bundle.backend)
    if line:
        print(f"warning: {line}", file=sys.stderr)
