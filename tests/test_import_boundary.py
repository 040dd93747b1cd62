"""The device side never imports torch, ONNX or a backend; `import edgepose` and `--help` import nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "onnx", "onnxruntime", "openvino", "nncf", "litert_torch", "ai_edge_litert", "tensorrt",
         "pycocotools", "matplotlib", "jax")

PROBE = """
import json, sys
{body}
heavy = {heavy!r}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))
"""


def _heavy_after(body: str) -> list[str]:
    code = PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_edgepose_is_light():
    assert _heavy_after("import edgepose; edgepose.__version__") == []


@pytest.mark.parametrize("cmd", ["", "train", "eval", "models", "doctor", "export", "import", "build", "demo",
                                 "devices", "bench", "run"])
def test_cli_help_is_light(cmd):
    argv = [a for a in ["--help", cmd] if a]
    body = ("import contextlib, io\nfrom edgepose.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main({list(reversed(argv))!r})\n    except SystemExit:\n        pass")
    assert _heavy_after(body) == []


@pytest.mark.parametrize("module", [
    "edgepose.codecs", "edgepose.codecs.heatmap", "edgepose.codecs.centernet", "edgepose.data.transforms",
    "edgepose.data.augment",
    "edgepose.data.coco", "edgepose.data.synthetic", "edgepose.data.synthetic_render", "edgepose.pipeline.preprocess",
    "edgepose.runtimes.base",
    "edgepose.keypoints", "edgepose.weights", "edgepose.utils.progress", "edgepose.runtimes.tflite",
    "edgepose.runtimes.onnxruntime", "edgepose.runtimes.openvino", "edgepose.runtimes.tensorrt", "edgepose.bundle",
    "edgepose.devices", "edgepose.devices.detect", "edgepose.devices.profiles", "edgepose.commands.devices",
    "edgepose.profiling.bench", "edgepose.profiling.runner", "edgepose.profiling.worker", "edgepose.profiling.schema",
    "edgepose.profiling.report", "edgepose.pipeline.draw", "edgepose.demo.images", "edgepose.pipeline.video",
    "edgepose.commands.run", "edgepose.pipeline.track", "edgepose.pipeline.smooth", "edgepose.pipeline.stages",
    "edgepose.pipeline.sources", "edgepose.pipeline.memory", "edgepose.golden", "edgepose.verify",
    "edgepose.devices.recommend", "edgepose.commands.verify", "edgepose.utils.native_stderr",
])
def test_device_side_modules_do_not_import_torch(module):
    assert _heavy_after(f"import {module}") == []
