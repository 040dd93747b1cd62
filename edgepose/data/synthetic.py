"""Synthetic COCO-17 keypoint data: procedurally drawn people written as a COCO keypoints dataset.

``render_sample`` draws one image: a background (gradients, noise, textures, clutter), one person
("single": a top-down style crop, the person filling most of it) or 1..max_people people at different
scales with overlaps ("multi"), random occluders, truncation at the border, blur, noise and
brightness changes. ``generate_dataset`` writes ``images/000000.jpg ...`` and ``annotations.json``
atomically, and reuses a folder made with the same parameters.

Conventions: image_size is (width, height); images are BGR uint8 (H, W, 3); keypoints are (17, 3)
[x, y, v] in image pixels with pixel centres at integer coordinates (cv2's drawing convention), COCO
visibility v=2 visible, v=1 labelled but occluded (by an occluder, another person drawn on top, or the
person's own torso / limbs), v=0 not labelled with x = y = 0 (outside the image, or the nose and eyes
of a head seen from behind). The person's left side is drawn darker than the right side and faces
carry eyes, nose and mouth, so that left and right can be told apart from the image.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from edgepose.data.synthetic_figure import (
    Figure,
    build_figure,
    figure_extent,
    make_texture,
    random_colour,
    sample_look,
    sample_pose,
)
from edgepose.data.synthetic_render import PersonRender, render_person
from edgepose.errors import ConfigError, DataError, suggest
from edgepose.keypoints import COCO17
from edgepose.utils.fs import make_public
from edgepose.utils.signals import remove_on_terminate

MODES = ("single", "multi")
DEFAULT_IMAGE_SIZE = {"single": (192, 256), "multi": (256, 256)}
MIN_IMAGE_SIDE = 64
# Bump when the drawing changes: cached datasets of another version are refused.
GENERATOR_VERSION = 2  # 2: unique annotation ids in multi-person images


# ------------------------------------------------------------------------------------------ arguments

def _check_args(mode: str, image_size: tuple[int, int], max_people: int) -> tuple[int, int]:
    """Validate the drawing arguments; returns image_size as (width, height) ints."""
    if mode not in MODES:
        raise suggest(str(mode), MODES, "synthetic mode")
    ok = (isinstance(image_size, (tuple, list)) and len(image_size) == 2
          and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in image_size))
    if not ok or min(image_size) < MIN_IMAGE_SIDE or max(image_size) > 4096:
        raise ConfigError(f"image_size must be (width, height) with integer sides in "
                          f"[{MIN_IMAGE_SIDE}, 4096]; got {image_size!r}")
    if isinstance(max_people, bool) or not isinstance(max_people, (int, np.integer)) or max_people < 1:
        raise ConfigError(f"max_people must be an integer >= 1; got {max_people!r}")
    return int(image_size[0]), int(image_size[1])


# ------------------------------------------------------------------------------------- backgrounds

def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    c1, c2 = random_colour(rng, 30), random_colour(rng, 30)
    a = rng.uniform(0, 2 * math.pi)
    xs, ys = np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]
    t = xs * math.cos(a) + ys * math.sin(a)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    return (c1 + (c2 - c1) * t[..., None]).astype(np.uint8)


def _colour_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    cell = rng.uniform(8, 64)
    grid = rng.uniform(20, 235, (max(2, int(h / cell)), max(2, int(w / cell)), 3)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def _clutter(rng: np.random.Generator, image: np.ndarray, count: int) -> None:
    """Random rectangles, circles, lines, polygons and limb-like bars drawn in place."""
    h, w = image.shape[:2]
    for _ in range(count):
        colour = tuple(float(c) for c in random_colour(rng, 30))
        shape = int(rng.integers(5))
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if shape == 0:
            cv2.rectangle(image, p, q, colour, -1)
        elif shape == 1:
            cv2.circle(image, p, int(rng.integers(3, max(4, min(h, w) // 4))), colour, -1, cv2.LINE_AA)
        elif shape == 2:
            cv2.line(image, p, q, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
        elif shape == 3:
            pts = rng.uniform(0, 1, (int(rng.integers(3, 7)), 2)) * (w, h)
            cv2.fillPoly(image, [pts.astype(np.int32)], colour, cv2.LINE_AA)
        else:  # a bar as thick as a limb, so that bars alone do not mean "person"
            d = rng.uniform(-1, 1, 2) * rng.uniform(10, min(h, w) / 2)
            q = (int(p[0] + d[0]), int(p[1] + d[1]))
            cv2.line(image, p, q, colour, int(rng.integers(4, max(5, min(h, w) // 12))), cv2.LINE_AA)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    r = rng.random()
    if r < 0.4:
        image = _gradient(rng, h, w)
    elif r < 0.7:
        image = _colour_noise(rng, h, w)
    else:
        shape = ("stripes", "checker", "noise")[int(rng.integers(3))]
        image = make_texture(rng, h, w, random_colour(rng, 40), (6.0, 40.0), shape)
    _clutter(rng, image, int(rng.integers(0, 9)))
    return image


def _occlude(rng: np.random.Generator, image: np.ndarray, owner: np.ndarray, box: np.ndarray) -> None:
    """Draw a random textured shape over part of ``box`` (x0, y0, x1, y1); marks ``owner`` -2."""
    h, w = image.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    c = np.array([rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])])
    half = np.array([bw * rng.uniform(0.1, 0.35), bh * rng.uniform(0.06, 0.2)]) + 2
    mask = np.zeros((h, w), np.uint8)
    shape = int(rng.integers(3))
    if shape == 0:
        p0, p1 = (c - half).astype(int).tolist(), (c + half).astype(int).tolist()
        cv2.rectangle(mask, tuple(p0), tuple(p1), 255, -1)
    elif shape == 1:
        cv2.ellipse(mask, tuple(c.astype(int).tolist()), tuple(half.astype(int).tolist()),
                    float(rng.uniform(0, 180)), 0, 360, 255, -1)
    else:
        ang = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(3, 7))))
        pts = c + np.stack([np.cos(ang), np.sin(ang)], 1) * half * rng.uniform(0.7, 1.4, (len(ang), 1))
        cv2.fillPoly(mask, [pts.astype(np.int32)], 255)
    sel = mask > 0
    image[sel] = make_texture(rng, h, w, random_colour(rng, 40))[sel]
    owner[sel] = -2


def _finish(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Camera effects: slight blur, brightness / contrast, sensor noise."""
    img = image.astype(np.float32)
    if rng.random() < 0.6:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.0))
    img = img * np.float32(rng.uniform(0.75, 1.2)) + np.float32(rng.uniform(-25, 25))
    sigma = rng.uniform(0, 6)
    if sigma > 1:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    return img.clip(0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------- scenes

def _place_single(rng: np.random.Generator, fig: Figure, w: int, h: int) -> tuple[float, tuple[float, float]]:
    """Scale and pelvis position of a top-down style crop: the person's box (aspect-fixed to the image)
    with a random margin, sometimes tighter so that the person is truncated."""
    x0, y0, x1, y1 = figure_extent(fig)
    bw, bh = x1 - x0, y1 - y0
    if bw / bh > w / h:
        bh = bw * h / w
    else:
        bw = bh * w / h
    truncate = rng.random() < 0.12
    pad, jit = (rng.uniform(0.75, 1.0), 0.15) if truncate else (rng.uniform(1.05, 1.3), 0.06)
    s = w / (bw * pad)
    ex = (x0 + x1) / 2 + rng.uniform(-jit, jit) * bw
    ey = (y0 + y1) / 2 + rng.uniform(-jit, jit) * bh
    return s, ((w - 1) / 2 - s * ex, (h - 1) / 2 - s * ey)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _place_multi(rng: np.random.Generator, figs: list[Figure], w: int,
                 h: int) -> list[tuple[Figure, float, tuple[float, float]]]:
    """Scales and positions of several people: boxes at least half inside the image and overlapping
    each other by IoU <= 0.35 (a person that finds no such place after 30 tries is left out)."""
    placed: list[tuple[Figure, float, tuple[float, float]]] = []
    boxes: list[np.ndarray] = []
    for fig in figs:
        ext = figure_extent(fig)
        for _ in range(30):
            s = h * math.exp(rng.uniform(math.log(0.3), math.log(0.85)))
            bw, bh = (ext[2] - ext[0]) * s, (ext[3] - ext[1]) * s
            bx, by = rng.uniform(-0.25 * bw, w - 0.75 * bw), rng.uniform(-0.25 * bh, h - 0.75 * bh)
            box = np.array([bx, by, bx + bw, by + bh])
            inside = (min(box[2], w) - max(box[0], 0)) * (min(box[3], h) - max(box[1], 0))
            if inside < 0.5 * bw * bh or any(_iou(box, b) > 0.35 for b in boxes):
                continue
            placed.append((fig, s, (bx - ext[0] * s, by - ext[1] * s)))
            boxes.append(box)
            break
    return sorted(placed, key=lambda p: p[1])  # small (far) people first


def _annotation(r: PersonRender, pid: int, owner: np.ndarray) -> dict | None:
    """COCO annotation of one drawn person; None when nothing of it is in the image."""
    h, w = owner.shape
    if r.silhouette.size == 0 or not r.silhouette.any():
        return None
    kp = r.keypoints.copy()
    inside = (kp[:, 0] >= 0) & (kp[:, 0] <= w - 1) & (kp[:, 1] >= 0) & (kp[:, 1] <= h - 1)
    kp[~inside | (kp[:, 2] == 0)] = 0
    for k in np.flatnonzero(kp[:, 2] == 2):
        o = owner[round(float(kp[k, 1])), round(float(kp[k, 0]))]
        if o != pid and o != -1:
            kp[k, 2] = 1
    ys, xs = np.nonzero(r.silhouette)
    x0, y0 = r.origin
    bbox = [float(x0 + xs.min()), float(y0 + ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]
    n = int((kp[:, 2] > 0).sum())
    if n == 0:
        return None
    return {"keypoints": kp, "bbox": bbox, "area": float(len(xs)), "num_keypoints": n}


def render_sample(rng: np.random.Generator, *, mode: str = "single", image_size: tuple[int, int] = (192, 256),
                  max_people: int = 3) -> tuple[np.ndarray, list[dict]]:
    """Draw one synthetic image with its people.

    Returns (image BGR uint8 (H, W, 3), annotations): one dict per person with 'keypoints' float32
    (17, 3) [x, y, v] in image pixels, 'bbox' [x, y, w, h] (tight box of the person's drawn, in-image
    silhouette, occluded parts included), 'area' (silhouette pixel count) and 'num_keypoints' (v > 0).
    ``image_size`` is (width, height); ``max_people`` is used in "multi" mode (1..max_people people).
    """
    w, h = _check_args(mode, image_size, max_people)
    image = _background(rng, h, w)
    owner = np.full((h, w), -1, np.int16)
    count = 1 if mode == "single" else int(rng.integers(1, max_people + 1))
    figs = [build_figure(sample_pose(rng), sample_look(rng), rng) for _ in range(count)]
    if mode == "single":
        s, c = _place_single(rng, figs[0], w, h)
        placed = [(figs[0], s, c)]
    else:
        placed = _place_multi(rng, figs, w, h)
    renders = []
    for pid, (fig, s, c) in enumerate(placed):
        r = render_person(image, fig, s, c, rng)
        if r.silhouette.size:
            x0, y0 = r.origin
            win = owner[y0:y0 + r.silhouette.shape[0], x0:x0 + r.silhouette.shape[1]]
            win[r.silhouette] = pid
        renders.append(r)
    if renders and rng.random() < 0.35:
        for _ in range(int(rng.integers(1, 3))):
            r = renders[int(rng.integers(len(renders)))]
            if r.silhouette.size:
                x0, y0 = r.origin
                box = np.array([x0, y0, x0 + r.silhouette.shape[1], y0 + r.silhouette.shape[0]], float)
                _occlude(rng, image, owner, box)
    anns = [_annotation(r, pid, owner) for pid, r in enumerate(renders)]
    return _finish(rng, image), [a for a in anns if a is not None]


# ---------------------------------------------------------------------------------------- dataset

def _coco_annotation(ann: dict, ann_id: int, image_id: int) -> dict:
    kp = ann["keypoints"]
    flat = [v for x, y, vis in kp.tolist() for v in (round(x, 2), round(y, 2), int(vis))]
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "keypoints": flat,
            "num_keypoints": int(ann["num_keypoints"]), "bbox": [round(float(b), 2) for b in ann["bbox"]],
            "area": round(float(ann["area"]), 2), "iscrowd": 0}


def _category() -> dict:
    return {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17.names),
            "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton]}


def _write_images(folder: Path, params: dict, progress: bool) -> dict:
    """Draw and write every image into ``folder``/images; returns the COCO dict."""
    (folder / "images").mkdir()
    w, h = params["image_size"]
    images, annotations = [], []
    n = params["num_images"]
    for i in range(n):
        rng = np.random.default_rng([params["seed"], i])
        image, anns = render_sample(rng, mode=params["mode"], image_size=(w, h),
                                    max_people=params["max_people"])
        name = f"images/{i:06d}.jpg"
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise DataError(f"cv2 could not encode synthetic image {i} as JPEG")
        (folder / name).write_bytes(buf.tobytes())
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        annotations += [_coco_annotation(a, len(annotations) + j + 1, i + 1) for j, a in enumerate(anns)]
        if progress and (i + 1 == n or (i + 1) % max(1, n // 100) == 0):
            print(f"\rsynthetic {params['mode']}: {i + 1}/{n} images", end="\n" if i + 1 == n else "",
                  file=sys.stderr, flush=True)
    info = {"description": "edgepose synthetic COCO-17 people", "version": str(GENERATOR_VERSION),
            "params": params}
    return {"info": info, "licenses": [], "images": images, "annotations": annotations,
            "categories": [_category()]}


def _cached(out: Path, params: dict) -> Path | None:
    """The json of a dataset in ``out`` made with ``params``; None when ``out`` is absent or empty;
    DataError when it holds something else."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return None
    ann = out / "annotations.json"
    try:
        found = json.loads(ann.read_text())["info"]["params"]
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"{out} exists but is not an edgepose synthetic dataset (no readable "
                        f"annotations.json with info.params); choose another out_dir or delete it") from None
    if found != params:
        diff = ", ".join(f"{k}={found.get(k)!r} (asked {v!r})"
                         for k, v in params.items() if found.get(k) != v)
        raise DataError(f"{out} holds a synthetic dataset made with other parameters: {diff}; "
                        f"delete it or choose another out_dir")
    return ann


def generate_dataset(out_dir: str | Path, *, num_images: int, mode: str = "single",
                     image_size: tuple[int, int] | None = None, seed: int = 0, max_people: int = 3,
                     progress: bool = False) -> Path:
    """Write ``out_dir/images/000000.jpg ...`` and ``out_dir/annotations.json`` (COCO keypoints; image
    ids 1..num_images, file_name relative to out_dir) and return the json path.

    Image i is drawn from ``np.random.default_rng([seed, i])``, so equal arguments give byte-identical
    files and a smaller dataset is a prefix of a larger one. The dataset is built in a temporary
    sibling folder and renamed into place. A folder made with the same parameters (stored in the
    json's info.params) is reused as is; one made with other parameters raises DataError.
    ``image_size`` (width, height) defaults to 192x256 for "single" and 256x256 for "multi".
    """
    if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ConfigError(f"num_images must be an integer >= 1; got {num_images!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0; got {seed!r}")
    if mode not in MODES:
        raise suggest(str(mode), MODES, "synthetic mode")
    w, h = _check_args(mode, DEFAULT_IMAGE_SIZE[mode] if image_size is None else image_size, max_people)
    params = {"generator_version": GENERATOR_VERSION, "mode": mode, "num_images": int(num_images),
              "image_size": [w, h], "seed": int(seed), "max_people": int(max_people)}
    out = Path(out_dir)
    found = _cached(out, params)
    if found is not None:
        return found
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        make_public(tmp)  # mkdtemp makes it private; the dataset is an ordinary folder
        with remove_on_terminate(tmp):  # a killed generation would leave up to GBs of images behind
            data = _write_images(tmp, params, progress)
        (tmp / "annotations.json").write_text(json.dumps(data))
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        try:
            os.rename(tmp, out)
        except OSError:  # another process finished the same folder first
            found = _cached(out, params)
            if found is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return found
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "annotations.json"


# ------------------------------------------------------------------------------------- inspection

_SIDE_COLOUR = {"left": (255, 140, 0), "right": (0, 120, 255), "centre": (0, 230, 230)}  # BGR


def _side(k: int) -> str:
    name = COCO17.names[k]
    return "left" if name.startswith("left") else "right" if name.startswith("right") else "centre"


def draw_annotations(image: np.ndarray, annotations: list[dict]) -> np.ndarray:
    """A copy of BGR ``image`` with each person's box (green), skeleton and keypoints drawn: the
    person's left side blue, right side orange, nose yellow; v=2 filled dots, v=1 hollow circles.
    ``annotations`` as returned by ``render_sample`` (keypoints (17, 3) or flat COCO lists)."""
    out = image.copy()
    r = max(2, round(min(out.shape[:2]) / 90))
    for ann in annotations:
        kp = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)
        if "bbox" in ann:
            x, y, bw, bh = ann["bbox"]
            p0, p1 = (round(float(x)), round(float(y))), (round(float(x + bw - 1)), round(float(y + bh - 1)))
            cv2.rectangle(out, p0, p1, (0, 200, 0), 1)
        for a, b in COCO17.skeleton:
            if kp[a, 2] > 0 and kp[b, 2] > 0:
                pa, pb = (kp[a, :2] * 16).round().astype(int), (kp[b, :2] * 16).round().astype(int)
                colour = _SIDE_COLOUR[_side(a) if _side(a) == _side(b) else "centre"]
                cv2.line(out, tuple(pa.tolist()), tuple(pb.tolist()), colour, 1, cv2.LINE_AA, 4)
        for k in np.flatnonzero(kp[:, 2] > 0):
            c = tuple((kp[k, :2] * 16).round().astype(int).tolist())
            thickness = -1 if kp[k, 2] >= 2 else 1
            cv2.circle(out, c, r * 16, _SIDE_COLOUR[_side(int(k))], thickness, cv2.LINE_AA, 4)
    return out
