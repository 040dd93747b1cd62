"""Distillation from a real teacher: pseudo-labels on real footage (``pseudo``), real + synthetic epochs (``mix``)."""
