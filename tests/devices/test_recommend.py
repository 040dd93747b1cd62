"""`edgepose doctor`'s recommendation: the device profile, checked against the installed backends."""

from __future__ import annotations

from edgepose.cli import main
from edgepose.devices.recommend import native_backend, recommend


def test_native_backends_come_from_the_backend_registry():
    assert [native_backend(t) for t in ("onnx", "openvino", "tflite", "tensorrt")] == \
        ["onnxruntime", "openvino", "tflite", "tensorrt"]


def test_installed_recommended_backend():
    rec = recommend("rpi5", available=lambda b: b == "tflite")
    assert rec.installed and rec.backend == "tflite" and rec.install is None
    assert rec.lines() == ["recommendation: profile rpi5 (Raspberry Pi 5 / 500 / CM5): tflite int8 on tflite "
                           "(installed) — edgepose export --device rpi5"]


def test_missing_backend_names_the_install_and_an_installed_alternative():
    rec = recommend("rpi5", available=lambda b: b == "onnxruntime")
    assert not rec.installed and "pip install 'edgepose[tflite]'" in rec.install
    assert rec.fallback == "onnx" and rec.fallback_backend == "onnxruntime"
    assert "--device rpi5 --target onnx" in "\n".join(rec.lines())
    jetson = recommend("jetson-orin-nano", available=lambda b: False)
    assert jetson.backend == "tensorrt" and jetson.fallback is None and "JetPack" in jetson.install
    assert "no backend that runs on this device is installed" in jetson.lines()[-1]
    assert recommend(None).lines()[0].startswith("recommendation: no device profile fits")


def test_doctor_prints_the_recommendation_for_this_machine(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "recommendation: profile x86" in out and "openvino int8 on openvino (installed)" in out
