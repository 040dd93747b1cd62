"""COCO keypoint OKS AP via pycocotools, and the COCO results-file writer.

Results use the standard COCO keypoint results format: one dict per person,
``{"image_id": int, "category_id": int, "keypoints": [x1, y1, s1, ...] (3K floats), "score": float}``
with coordinates in original image pixels. pycocotools is imported lazily (the ``eval`` extra).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.data.coco import read_json
from edgepose.errors import BackendUnavailable, DataError, InputError
from edgepose.keypoints import KeypointSchema, get_schema
from edgepose.utils.fs import make_public

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def _pycocotools() -> tuple[Any, Any]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise BackendUnavailable("pycocotools is not installed; COCO keypoint AP needs it: "
                                 "pip install 'edgepose[eval]'") from None
    return COCO, COCOeval


def _load_gt(gt: str | Path | dict, use_area: bool) -> dict:
    """A private copy of the ground truth with the fields COCOeval needs filled in."""
    data = copy.deepcopy(gt) if isinstance(gt, dict) else read_json(gt, "COCO ground-truth file")
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DataError(f"ground truth must be a COCO dict with 'images' and 'annotations'; received "
                        f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
    for ann in data["annotations"]:
        kps = np.asarray(ann.get("keypoints") or [], dtype=np.float64)
        ann.setdefault("num_keypoints", int(np.count_nonzero(kps[2::3] > 0)))
        ann.setdefault("iscrowd", 0)
        if not use_area or "area" not in ann:
            ann["area"] = float(ann["bbox"][2] * ann["bbox"][3])
    if "categories" not in data:  # derive them: loadRes copies this list
        cats = sorted({int(a.get("category_id", 1)) for a in data["annotations"]} or {1})
        data["categories"] = [{"id": c, "name": str(c)} for c in cats]
    return data


def _check_results(results: Sequence[dict], image_ids: set[int], k: int) -> None:
    for i, r in enumerate(results):
        if not isinstance(r, dict) or not {"image_id", "category_id", "keypoints", "score"} <= set(r):
            raise DataError(f"result {i} is not a COCO keypoint result (expected image_id, category_id, "
                            f"keypoints, score); received {r!r:.120}")
        if len(r["keypoints"]) != 3 * k:
            raise DataError(f"result {i} has {len(r['keypoints'])} keypoint values; expected {3 * k} (K={k})")
    unknown = sorted({int(r["image_id"]) for r in results} - image_ids)
    if unknown:
        raise DataError(f"{len(unknown)} result image ids are not in the ground truth (first: {unknown[:5]}); "
                        f"ground truth has {len(image_ids)} images")


def coco_keypoint_eval(
    gt: str | Path | dict,
    results: Sequence[dict],
    *,
    schema: KeypointSchema | str = "coco",
    sigmas: Sequence[float] | None = None,
    use_area: bool = True,
    verbose: bool = False,
    keep_matches: bool = False,
) -> dict[str, Any]:
    """OKS keypoint AP/AR (the 10 COCOeval stats) of ``results`` against ``gt`` (file path or dict).

    ``sigmas`` default to the schema's OKS sigmas (K,). ``use_area=False`` uses box w*h as the object
    area instead of the annotated (segmentation) area. Empty ``results`` give 0.0 everywhere. A stat
    is -1.0 where COCOeval has no ground truth for it (e.g. no medium-size persons). ``keep_matches`` adds
    "matches": the per-image match records of :func:`edgepose.eval.bootstrap.matches_of` (None for empty
    ``results``), for a bootstrap of the AP.
    """
    COCO, COCOeval = _pycocotools()
    sig = np.asarray(sigmas if sigmas is not None else get_schema(schema).sigmas, dtype=np.float64)
    data = _load_gt(gt, use_area)
    ids = [a.get("id") for a in data["annotations"]]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"ground truth has duplicate annotation id {dup!r}; pycocotools would silently merge "
                        "those people, so every annotation needs a unique id")
    _check_results(results, {int(im["id"]) for im in data["images"]}, len(sig))
    if not results:
        return dict(dict.fromkeys(STAT_NAMES, 0.0), **({"matches": None} if keep_matches else {}))
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        coco_gt = COCO()
        coco_gt.dataset = data
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(list(results)))
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.kpt_oks_sigmas = sig
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats: dict[str, Any] = {name: float(v) for name, v in zip(STAT_NAMES, ev.stats)}
    if keep_matches:
        from edgepose.eval.bootstrap import matches_of

        stats["matches"] = matches_of(ev)
    return stats


def poses_to_coco_results(image_id: int, keypoints: np.ndarray, scores: np.ndarray,
                          category_id: int = 1) -> list[dict]:
    """COCO results for one image: keypoints (N, K, 3) x, y, score in image pixels; scores (N,)."""
    kps = np.asarray(keypoints, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    if kps.ndim != 3 or kps.shape[-1] != 3 or sc.shape != (kps.shape[0],):
        raise InputError(f"need keypoints (N, K, 3) and scores (N,); received {kps.shape} and {sc.shape}")
    return [{"image_id": int(image_id), "category_id": int(category_id),
             "keypoints": kps[i].reshape(-1).tolist(), "score": float(sc[i])} for i in range(kps.shape[0])]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_results_json(path: str | Path, results: Sequence[dict]) -> Path:
    """Write ``results`` as JSON atomically (temp file in the same folder + os.replace)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        make_public(tmp)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(list(results), f, default=_json_default)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p
