"""PAF codec: targets of a hand-built multi-person scene decode back into every person (crossing limbs, two people
touching, one cut by the frame), the grouping degrades gracefully with noise, the in-graph half matches numpy, and
bad input is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.codecs import codec_from_dict, get_codec
from edgepose.codecs.paf import dense_offsets, peak_values
from edgepose.errors import ConfigError, InputError

# a standing COCO-17 figure, 116 px tall, facing the camera (x right, y down), centred on its hips' midpoint
FIGURE = np.array([[0, -50], [-4, -54], [4, -54], [-9, -52], [9, -52], [-16, -36], [16, -36], [-22, -14],
                   [22, -14], [-24, 6], [24, 6], [-10, 4], [10, 4], [-11, 34], [11, 34], [-12, 62], [12, 62]], float)
R_ELBOW, R_WRIST, L_ELBOW, L_WRIST = 8, 10, 7, 9


def person(cx: float, cy: float, scale: float = 1.0) -> np.ndarray:
    kp = np.zeros((17, 3))
    kp[:, :2] = FIGURE * scale + (cx, cy)
    kp[:, 2] = 2
    return kp


def scene() -> np.ndarray:
    """Five people in a 256x256 frame: two reaching across each other (forearms crossing), two standing shoulder to
    shoulder (boxes touching), one half out of the right edge."""
    a, b = person(40, 70, 0.8), person(104, 72, 0.8)
    a[R_ELBOW, :2], a[R_WRIST, :2] = (66, 62), (94, 50)  # a reaches right ...
    b[L_ELBOW, :2], b[L_WRIST, :2] = (80, 60), (52, 48)  # ... b reaches left: the forearms cross near x = 73
    c, d = person(60, 190, 0.85), person(102, 192, 0.85)  # shoulder to shoulder
    e = person(246, 130, 1.0)  # right half outside the 256-px frame
    return np.stack([a, b, c, d, e])


def boxes_of(kps: np.ndarray) -> np.ndarray:
    return np.concatenate([kps[..., :2].min(1), kps[..., :2].max(1)], 1)


def in_frame(kps: np.ndarray, size: int = 256) -> np.ndarray:
    return (kps[..., :2] >= 0).all(-1) & (kps[..., :2] <= size - 1).all(-1)


def recovered(gt: np.ndarray, found: np.ndarray, tol: float, min_share: float = 1.0) -> list[bool]:
    """Per GT person: a distinct decoded person holds at least ``min_share`` of its in-frame joints within ``tol``
    px (the joints it holds outside the frame must be missing: score 0)."""
    used, out = set(), []
    for kp in gt:
        vis = in_frame(kp[None])[0]
        best = None
        for j, cand in enumerate(found):
            if j in used:
                continue
            close = (np.linalg.norm(cand[:, :2] - kp[:, :2], axis=-1) <= tol) & (cand[:, 2] > 0)
            if close[vis].mean() >= min_share and (min_share < 1 or not (cand[~vis, 2] > 0).any()):
                best = j
                break
        out.append(best is not None)
        used.add(best)
    return out


@pytest.fixture(scope="module")
def codec():
    return get_codec("paf", input_size=(256, 256), stride=8)


def test_targets_of_a_crowded_scene_decode_into_every_person(codec):
    kps = scene()
    t = codec.encode(kps, boxes_of(kps))
    assert t["heatmaps"].shape == (17, 32, 32) and t["pafs"].shape == (38, 32, 32) and t["mask"].all()
    found, scores, boxes = codec.decode((t["heatmaps"], t["pafs"]))
    assert found.shape[:2] == (1, 5) and scores.shape == (1, 5) and boxes.shape == (1, 5, 4)
    assert all(recovered(kps, found[0], tol=1.0)), recovered(kps, found[0], tol=1.0)
    assert (scores[0, :4] > 0.9).all() and scores[0, 4] < 0.6  # the cut person has half its joints
    err = [np.abs(f[:, :2] - g[:, :2])[in_frame(g[None])[0]].max()
           for g in kps for f in found[0] if np.abs(f[:, :2] - g[:, :2])[in_frame(g[None])[0]].max() < 2]
    assert max(err) < 0.1  # the log-parabola fit is exact on Gaussian targets


def test_crossing_forearms_keep_their_owners(codec):
    kps = scene()[:2]
    t = codec.encode(kps, boxes_of(kps))
    found = codec.decode((t["heatmaps"], t["pafs"]))[0][0]
    for gt in kps:
        mine = found[np.argmin(np.linalg.norm(found[:, 0, :2] - gt[0, :2], axis=-1))]  # by the nose
        np.testing.assert_allclose(mine[[R_WRIST, L_WRIST], :2], gt[[R_WRIST, L_WRIST], :2], atol=1.0)


@pytest.mark.parametrize("noise, min_fraction", [(0.02, 1.0), (0.05, 1.0), (0.1, 0.9), (0.2, 0.3)])
def test_grouping_degrades_gracefully_with_noise(codec, noise, min_fraction):
    """Gaussian noise of ``noise`` on every heatmap and PAF cell (peaks are 1, PAF vectors unit length): a person
    counts as recovered when one decoded person holds 80 % of its in-frame joints within half a cell."""
    kps = scene()
    t = codec.encode(kps, boxes_of(kps))
    hits = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        hm = t["heatmaps"] + rng.normal(0, noise, t["heatmaps"].shape).astype(np.float32)
        pafs = t["pafs"] + rng.normal(0, noise, t["pafs"].shape).astype(np.float32)
        found, scores, _ = codec.decode((hm, pafs))
        hits += recovered(kps, found[0][scores[0] > 0.1], tol=4.0, min_share=0.8)
    assert np.mean(hits) >= min_fraction, f"recovered {np.mean(hits):.2f} of the people at noise {noise}"


def test_empty_maps_and_a_lone_person(codec):
    empty = np.zeros((1, 17, 32, 32), np.float32), np.zeros((1, 38, 32, 32), np.float32)
    kps, scores, boxes = codec.decode(empty)
    assert kps.shape == (1, 0, 17, 3) and scores.shape == (1, 0) and boxes.shape == (1, 0, 4)
    one = person(128, 128, 1.5)[None]
    t = codec.encode(one, boxes_of(one))
    kps, scores, boxes = codec.decode({"heatmaps": t["heatmaps"], "pafs": t["pafs"]})
    assert kps.shape == (1, 1, 17, 3) and scores[0, 0] > 0.8  # peaks off the cell centres read a little below 1
    np.testing.assert_allclose(boxes[0, 0], boxes_of(one)[0], atol=0.1)


def test_a_person_without_joints_masks_their_box(codec):
    kps = np.stack([person(60, 128), np.zeros((17, 3))])
    t = codec.encode(kps, np.array([[20, 60, 100, 200], [150, 40, 230, 220]], float))
    assert t["mask"][0, 16, 24] == 0 and t["mask"][0, 16, 8] == 1  # cell (24, 16) is at x = 195.5, y = 131.5


def test_the_graph_half_matches_numpy_and_both_placements_group_alike(codec):
    torch = pytest.importorskip("torch")
    from edgepose.codecs.graph_paf import PAFDecode

    kps = scene()
    t = codec.encode(kps, boxes_of(kps))
    rng = np.random.default_rng(0)
    hm = (t["heatmaps"] + rng.normal(0, 0.05, t["heatmaps"].shape)).astype(np.float32)[None]
    pafs = t["pafs"][None]
    peaks, offsets, passed = (o.numpy() for o in PAFDecode(codec)((torch.from_numpy(hm), torch.from_numpy(pafs))))
    np.testing.assert_array_equal(peaks, peak_values(hm, codec.peak_threshold))
    np.testing.assert_allclose(offsets, dense_offsets(hm, codec.sigma), atol=1e-5)
    assert passed is not None and np.array_equal(passed, pafs)
    host = codec.decode((hm, pafs))
    graph = codec.decode_peaks((peaks, offsets, passed))
    for a, b in zip(host, graph):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_round_trip_of_the_parameters(codec):
    again = codec_from_dict(codec.to_dict())
    assert again.to_dict() == codec.to_dict() and len(again.limbs) == 19


@pytest.mark.parametrize("params, match", [
    (dict(stride=7), r"input_size \(256, 256\) must be divisible by stride 7"),
    (dict(limbs=[(0, 17)]), r"limbs must be .* in \[0, 17\), got \[\(0, 17\)\]"),
    (dict(num_keypoints=5), "no default skeleton for 5 keypoints"),
    (dict(sigma=0), "sigma must be > 0 feature px, got 0"),
    (dict(min_above=2), r"min_above must be in \[0, 1\], got 2"),
])
def test_bad_parameters_name_what_was_expected(params, match):
    with pytest.raises(ConfigError, match=match):
        get_codec("paf", **params)


def test_bad_maps_and_people_name_what_was_expected(codec):
    with pytest.raises(InputError, match=r"paf output 'pafs' must be \(N, 38, 32, 32\) or \(38, 32, 32\), "
                                         r"got shape \(1, 36, 32, 32\)"):
        codec.decode((np.zeros((1, 17, 32, 32)), np.zeros((1, 36, 32, 32))))
    with pytest.raises(InputError, match=r"paf decode expects 2 outputs \['heatmaps', 'pafs'\], got list of 3"):
        codec.decode([np.zeros((17, 32, 32))] * 3)
    with pytest.raises(InputError, match=r"outputs dict lacks \['offsets'\]"):
        codec.decode_peaks({"peaks": np.zeros((17, 32, 32)), "pafs": np.zeros((38, 32, 32))})
    with pytest.raises(InputError, match=r"encode expects keypoints \(P, 17, 3\), got shape \(2, 16, 3\)"):
        codec.encode(np.zeros((2, 16, 3)), np.zeros((2, 4)))
    with pytest.raises(InputError, match=r"encode expects boxes \(2, 4\) xyxy, got shape \(3, 4\)"):
        codec.encode(np.zeros((2, 17, 3)), np.zeros((3, 4)))
