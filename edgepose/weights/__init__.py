"""Embedded default weights: the synthetic-trained defaults (RECIPE.md) and Google's MoveNet (MOVENET.md).

Only numpy-free path logic lives here; loading goes through :mod:`edgepose.models.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

from edgepose.errors import ConfigError

WEIGHTS_DIR = Path(__file__).resolve().parent

# model name → checkpoint file shipped in this folder
DEFAULTS = {
    "simplebaseline-mnv2s-edge": "simplebaseline-mnv2s-edge.pt",
    "centernet-mnv2s": "centernet-mnv2s.pt",
    # Google's MoveNet, converted from its TFJS files (MOVENET.md; Apache-2.0, LICENSE-Apache-2.0.txt)
    "movenet-lightning": "movenet-lightning.pt",
    "movenet-thunder": "movenet-thunder.pt",
    "movenet-multipose": "movenet-multipose.pt",
    # distilled here from MoveNet Thunder on real footage, starting from Lightning's trunk (RECIPE.md; Apache-2.0)
    "movenet-heatmap-edge": "movenet-heatmap-edge.pt",
    # MultiPose's trunk, pyramid and heads re-laid as CenterNet's, its joint-offset head distilled here (RECIPE.md)
    "movenet-centernet-edge": "movenet-centernet-edge.pt",
}


def default_checkpoint(name: str) -> Path:
    """Path of the embedded checkpoint for model ``name``."""
    if name not in DEFAULTS:
        raise ConfigError(f"model {name!r} has no embedded default weights; models with defaults: "
                          f"{', '.join(sorted(DEFAULTS))} (or pass weights=PATH to your own checkpoint)")
    path = WEIGHTS_DIR / DEFAULTS[name]
    if not path.is_file():
        raise ConfigError(f"default weights for {name!r} are missing from the installation ({path}); "
                          "rebuild them with `make weights`")
    return path
