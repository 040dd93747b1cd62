"""Pose tracking: ids through crossing people, a short occlusion and a low-score stretch; options and helpers."""

from __future__ import annotations

import numpy as np
import pytest
from track_scenes import crossing, frame_poses, person

from edgepose.errors import ConfigError
from edgepose.pipeline.track import PoseTracker, TrackOptions, assign, box_iou, pose_oks


def _id_switches(sequence, tracker) -> tuple[int, dict]:
    """Run ``tracker`` over ``sequence``; count the frames where a true person's track id differs from the id it
    had before (an id switch, as MOT counts them) → (switches, {true id: set of track ids})."""
    last, switches, seen = {}, 0, {}
    for poses, truth in sequence:
        ids = tracker.update(poses)
        for true, tid in zip(truth, ids.tolist()):
            if tid < 0:
                continue
            switches += true in last and last[true] != tid
            last[true] = tid
            seen.setdefault(true, set()).add(tid)
    return switches, seen


@pytest.mark.parametrize("similarity", ["oks", "iou"])
def test_ids_survive_people_crossing(similarity):
    switches, seen = _id_switches(crossing(60), PoseTracker(TrackOptions(similarity=similarity)))
    assert switches == 0 and seen == {0: {1}, 1: {2}}


def test_ids_survive_a_short_occlusion_at_the_crossing():
    """A is hidden behind B for 6 frames while they cross: its lost track is predicted forward and gets A back."""
    tracker = PoseTracker(TrackOptions(patience=10))
    switches, seen = _id_switches(crossing(60, hidden=range(27, 33)), tracker)
    assert switches == 0 and seen == {0: {1}, 1: {2}}
    assert tracker.next_id == 3  # no new track was started for A


def test_an_occlusion_longer_than_the_patience_ends_the_track():
    tracker = PoseTracker(TrackOptions(patience=3))
    _, seen = _id_switches(crossing(60, hidden=range(20, 30)), tracker)
    assert seen[0] == {1, 3} and tracker.ended == 1


def test_low_score_people_continue_a_track_but_start_none():
    """ByteTrack's second stage: A scoring 0.2 (below high_score 0.3) keeps its id; a lone low scorer gets -1."""
    switches, seen = _id_switches(crossing(40, low=range(10, 20)), PoseTracker())
    assert switches == 0 and seen == {0: {1}, 1: {2}}
    tracker = PoseTracker()
    kps, box = person(200, 200, 150)
    assert tracker.update(frame_poses([(kps, box, 0.2)])).tolist() == [-1]
    assert tracker.update(frame_poses([(kps, box, 0.05), (kps + [400, 0, 0], box + [400, 0, 400, 0], 0.9)])
                          ).tolist() == [-1, 1]


def test_without_the_second_stage_low_score_frames_lose_the_person():
    """The same sequence with low_score = high_score (one stage): A is left out (-1) in its 10 low-score frames."""
    def tracked_a(tracker):
        return sum(int(tracker.update(poses)[truth.index(0)] >= 0) for poses, truth in crossing(40, low=range(10, 20)))

    assert tracked_a(PoseTracker()) == 40
    assert tracked_a(PoseTracker(TrackOptions(low_score=0.3))) == 30


def test_tracker_memory_is_bounded():
    """Tracks end after their patience, trails keep their length: a long run holds no more than it needs."""
    tracker = PoseTracker(TrackOptions(patience=2, trail=4))
    rng = np.random.default_rng(1)
    for _ in range(300):  # a new person in a new place every frame, each seen once
        kps, box = person(rng.uniform(0, 2000), rng.uniform(0, 2000), 100)
        tracker.update(frame_poses([(kps, box, 0.9)]))
    assert len(tracker.tracks) <= 3 and tracker.next_id == 301
    assert all(len(t.trail) <= 4 for t in tracker.tracks)


def test_boxes_from_tracks_follow_the_poses():
    tracker = PoseTracker()
    kps, box = person(300, 300, 200)
    tracker.update(frame_poses([(kps, box, 0.9)]), box_scores=np.array([0.7]))
    boxes, ids = tracker.boxes(expand=1.0)
    assert ids.tolist() == [1] and boxes.shape == (1, 5)
    np.testing.assert_allclose(boxes[0, :4], [*kps[:, :2].min(0), *kps[:, :2].max(0)], atol=1e-3)
    assert boxes[0, 4] == pytest.approx(0.7)
    clipped, _ = tracker.boxes(expand=3.0, frame_shape=(320, 340))
    assert clipped[0, :4].min() >= 0 and clipped[0, 2] <= 340 and clipped[0, 3] <= 320
    tracker.update(frame_poses([]))  # lost: no box from it
    assert tracker.boxes()[0].shape == (0, 5)


def test_similarities():
    a = np.array([[0, 0, 10, 10]], np.float32)
    np.testing.assert_allclose(box_iou(a, [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]), [[1, 1 / 3, 0]])
    kps, box = person(100, 100, 100)
    far = kps.copy()
    far[:, :2] += 30
    hidden = kps.copy()
    hidden[:, 2] = 0.0
    sig = np.full(17, 0.05)
    oks = pose_oks(kps[None], box[None], np.stack([kps, far, hidden]), sig, 0.3)
    assert oks[0, 0] == pytest.approx(1.0) and 0 < oks[0, 1] < 0.5 and np.isnan(oks[0, 2])
    assert assign(np.array([[0.9, 0.8], [0.85, 0.1]]), 0.2) == [(0, 1), (1, 0)]  # optimal, not greedy
    assert assign(np.array([[0.1]]), 0.2) == []


def test_assign_leaves_weak_pairs_out_before_optimising():
    """Row 0's weak pair (0.15 < 0.2) must not take row 1's only partner: (0, 0) is kept, not (1, 0) alone."""
    assert assign(np.array([[0.9, 0.15], [0.85, 0.0]]), 0.2) == [(0, 0)]


@pytest.mark.parametrize("kw", [dict(high_score=1.5), dict(low_score=0.5, high_score=0.3), dict(patience=-1),
                                dict(similarity="giou"), dict(trail=2.5)])
def test_bad_options_are_one_line_errors(kw):
    with pytest.raises(ConfigError, match=next(iter(kw))) as e:
        TrackOptions(**kw)
    assert "\n" not in str(e.value) and "expected" in str(e.value)
