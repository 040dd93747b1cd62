"""The main job (``edgepose demo`` / ``make demo``): export, gate, bench and report the default models."""
