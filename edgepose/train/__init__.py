"""Training: losses, datasets that turn COCO-format data into targets, and the training loop (torch)."""
