"""The associative-embedding codec on hand-built maps: a multi-person scene (touching people, crossing arms, a
truncated person) encoded, given ideal tags, decoded back exactly; graceful loss under noise; the in-graph
candidates against the host's; one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.codecs import codec_from_dict, get_codec
from edgepose.errors import ConfigError, InputError

# a COCO-17 figure in a unit-height box: x relative to the centre line, y from the top
TEMPLATE = np.array([(0, .08), (.03, .06), (-.03, .06), (.06, .07), (-.06, .07), (.12, .2), (-.12, .2),
                     (.16, .35), (-.16, .35), (.18, .5), (-.18, .5), (.08, .52), (-.08, .52), (.09, .73),
                     (-.09, .73), (.1, .95), (-.1, .95)], np.float32)
SIZE = 256


def person(cx: float, top: float, height: float) -> np.ndarray:
    xy = TEMPLATE * height + (cx, top)
    return np.concatenate([xy, np.full((17, 1), 2.0, np.float32)], 1)


def scene() -> np.ndarray:
    """(4, 17, 3): A and B touch (shoulders 14 px apart) with crossed arms, C runs off the right edge, D small."""
    a, b, c, d = person(70, 40, 150), person(120, 40, 150), person(246, 60, 130), person(180, 150, 90)
    a[9, :2] = (128, 100)  # A's left wrist over B
    b[10, :2] = (62, 104)  # B's right wrist over A
    kps = np.stack([a, b, c, d])
    inside = (kps[..., 0] >= 0) & (kps[..., 0] < SIZE) & (kps[..., 1] >= 0) & (kps[..., 1] < SIZE)
    kps[~inside, 2] = 0  # C's joints beyond the edge are not labelled
    return kps


def ideal_outputs(codec, kps: np.ndarray, tag_values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The encoded heatmaps and tag maps that paint each person's value on the 3x3 cells around its joints."""
    t = codec.encode(kps, None)
    wq, hq = codec.feature_size
    tags = np.zeros((17, hq, wq), np.float32)
    for p, value in enumerate(tag_values):
        for j in np.flatnonzero(kps[p, :, 2] > 0):
            cy, cx = divmod(int(t["joints"][p, j]), wq)
            tags[j, max(cy - 1, 0):cy + 2, max(cx - 1, 0):cx + 2] = value
    return t["heatmaps"][None], tags[None], t["heatmaps_hr"][None]


def recovered(kps_true: np.ndarray, kps: np.ndarray, scores: np.ndarray, tol: float = 1.0) -> float:
    """Fraction of labelled GT joints found within ``tol`` px in the decoded person matched to their person
    (each GT person takes the closest unused decoded person above score 0.05)."""
    free = list(np.flatnonzero(scores > 0.05))
    hits = total = 0
    for gt in kps_true:
        vis = gt[:, 2] > 0
        total += int(vis.sum())
        if not free:
            continue
        d = [np.linalg.norm(kps[j, vis, :2] - gt[vis, :2], axis=-1) for j in free]
        best = int(np.argmin([np.mean(x) for x in d]))
        hits += int((d[best] <= tol).sum())
        free.pop(best)
    return hits / total


def test_scene_is_hard_but_resolvable():
    kps = scene()
    assert (kps[2, :, 2] == 0).sum() >= 4 and (kps[2, :, 2] > 0).sum() >= 8  # C is truncated, still there
    xy = kps[..., :2]
    same_joint = np.linalg.norm(xy[:, None] - xy[None], axis=-1)[~np.eye(4, dtype=bool)]
    assert same_joint.min() > 12  # same-type joints of two people stay apart by more than the NMS window
    assert np.linalg.norm(kps[0, 5, :2] - kps[1, 6, :2]) < 20  # A's and B's shoulders touch


@pytest.mark.parametrize("tag_values", [(1.0, 3.0, 5.0, 7.0), (-2.5, 4.0, 0.7, 9.0)])
def test_ideal_maps_recover_every_person_exactly(tag_values):
    codec = get_codec("ae", input_size=(SIZE, SIZE))
    kps_true = scene()
    kps, scores, boxes = codec.decode(ideal_outputs(codec, kps_true, tag_values))
    assert kps.shape == (1, 30, 17, 3) and scores.shape == (1, 30) and boxes.shape == (1, 30, 4)
    assert (scores[0] > 0.05).sum() == 4  # four people, no fragments
    assert recovered(kps_true, kps[0], scores[0], tol=1.0) == 1.0
    for gt in kps_true:  # the right grouping: each decoded person has exactly one GT person's joints
        j = np.argmin(np.linalg.norm(kps[0, :4, 0, :2] - gt[0, :2], axis=-1))
        vis = gt[:, 2] > 0
        assert np.abs(kps[0, j, vis, :2] - gt[vis, :2]).max() <= 1.0
        assert (kps[0, j, ~vis, 2] == 0).all()  # the truncated person's missing joints stay missing
        lo, hi = gt[vis, :2].min(0), gt[vis, :2].max(0)
        np.testing.assert_allclose(boxes[0, j], np.concatenate([lo, hi]), atol=1.0)


def test_refinement_fills_a_weak_joint_by_tag():
    codec = get_codec("ae", input_size=(SIZE, SIZE))
    kps_true = scene()
    hm, tags, hm_hr = ideal_outputs(codec, kps_true, (1.0, 3.0, 5.0, 7.0))
    hm[:, 0] *= 0.1  # every nose below the detection threshold: only refinement finds them
    hm_hr[:, 0] *= 0.1
    kps, scores, _ = codec.decode((hm, tags, hm_hr))
    assert recovered(kps_true, kps[0], scores[0], tol=1.0) == 1.0
    kps, scores, _ = get_codec("ae", input_size=(SIZE, SIZE), refine=False).decode((hm, tags, hm_hr))
    assert recovered(kps_true, kps[0], scores[0], tol=1.0) == pytest.approx(1 - 4 / (kps_true[..., 2] > 0).sum())


@pytest.mark.parametrize("heat_noise, tag_noise, minimum", [(0.02, 0.05, 1.0), (0.05, 0.15, 1.0),
                                                           (0.1, 0.25, 0.9), (0.2, 0.4, 0.5)])
def test_noise_degrades_gracefully(heat_noise, tag_noise, minimum):
    codec = get_codec("ae", input_size=(SIZE, SIZE))
    kps_true = scene()
    rng = np.random.default_rng(0)
    fractions = []
    for _ in range(3):
        hm, tags, hm_hr = ideal_outputs(codec, kps_true, (1.0, 3.0, 5.0, 7.0))
        noisy = (hm + rng.normal(0, heat_noise, hm.shape), tags + rng.normal(0, tag_noise, tags.shape),
                 hm_hr + rng.normal(0, heat_noise, hm_hr.shape))
        kps, scores, _ = codec.decode(tuple(a.astype(np.float32) for a in noisy))
        fractions.append(recovered(kps_true, kps[0], scores[0], tol=2.0))
    assert min(fractions) >= minimum, fractions


def test_graph_candidates_match_the_host():
    torch = pytest.importorskip("torch")
    from edgepose.codecs.graph_ae import AEDecode

    codec = get_codec("ae", input_size=(64, 96), max_people=8, tag_dim=2)
    rng = np.random.default_rng(1)
    hm = rng.normal(size=(2, 17, 24, 16)).astype(np.float32)
    tags = rng.normal(size=(2, 34, 24, 16)).astype(np.float32)
    hr = rng.normal(size=(2, 17, 48, 32)).astype(np.float32)
    hr[0, 0, 10, 10:12] = 50.0  # a tie: the lower index wins in both
    peaks, peak_tags = codec.candidates((hm, tags, hr))
    g_peaks, g_tags = AEDecode(codec)({"heatmaps": torch.from_numpy(hm), "tags": torch.from_numpy(tags),
                                       "heatmaps_hr": torch.from_numpy(hr)})
    np.testing.assert_allclose(g_peaks.numpy(), peaks, atol=1e-4)
    np.testing.assert_array_equal(g_tags.numpy(), peak_tags)
    host = codec.decode((hm, tags, hr))
    for a, b in zip(codec.group(g_peaks.numpy(), g_tags.numpy()), host):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_upsample_matches_torch_bilinear():
    torch = pytest.importorskip("torch")
    from edgepose.codecs.ae import upsample2

    x = np.random.default_rng(2).normal(size=(1, 3, 5, 7)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=2.0, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(upsample2(x), ref.numpy(), atol=1e-6)


def test_empty_maps_give_no_people_and_round_trip():
    codec = get_codec("ae", input_size=(64, 64), max_people=5)
    z = (np.zeros((17, 16, 16)), np.zeros((17, 16, 16)), np.zeros((17, 32, 32)))  # no batch axis
    kps, scores, boxes = codec.decode(z)
    assert kps.shape == (1, 5, 17, 3) and not scores.any() and not boxes.any()
    assert codec_from_dict(codec.to_dict()).to_dict() == codec.to_dict()


def test_bad_inputs_name_what_was_expected():
    codec = get_codec("ae", input_size=(64, 64), max_people=5)
    with pytest.raises(InputError, match=r"'heatmaps_hr' must be \(N, 17, 32, 32\)"):
        codec.decode((np.zeros((1, 17, 16, 16)), np.zeros((1, 17, 16, 16)), np.zeros((1, 17, 16, 16))))
    with pytest.raises(InputError, match="expects 3 outputs"):
        codec.decode((np.zeros((1, 17, 16, 16)),))
    with pytest.raises(InputError, match=r"lacks \['tags'\]"):
        codec.decode({"heatmaps": 0, "heatmaps_hr": 0})
    with pytest.raises(InputError, match=r"peaks must be \(N, 17, 5, 3\)"):
        codec.group(np.zeros((1, 17, 4, 3)), np.zeros((1, 17, 4, 1)))
    with pytest.raises(InputError, match=r"keypoints \(P, 17, 3\)"):
        codec.encode(np.zeros((2, 16, 3)), None)
    for bad in ({"stride": 3}, {"nms_kernel": 4}, {"input_size": (66, 64)}, {"sigma": 0}, {"tag_dim": 0}):
        with pytest.raises(ConfigError):
            get_codec("ae", **bad)
