"""Dataset readers (COCO, MPII), synthetic data and geometric / colour transforms (numpy + OpenCV only)."""
