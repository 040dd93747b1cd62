"""Pre- and post-processing shared by every runtime (numpy + OpenCV only: device side)."""

# a person on detector boxes starts a track at this score (``edgepose run --min-score`` default, and the PoseTrack
# evaluation's): one number, so that the evaluation measures the tracker as ``run`` uses it
START_SCORE = 0.3
