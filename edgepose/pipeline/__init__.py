"""Pre- and post-processing shared by every runtime (numpy + OpenCV only: device side)."""
