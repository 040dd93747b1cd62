"""export()'s options: enums that are strings, dataclasses validated once, flat keywords folded in one place."""

from __future__ import annotations

import inspect
import json

import pytest

import edgepose
from edgepose.errors import ConfigError
from edgepose.export import CalibMethod, DecodePlace, ParityOptions, Precision, QuantOptions
from edgepose.export.options import resolve_options
from edgepose.utils.options import check_threads


def test_public_names():
    for name in ("QuantOptions", "ParityOptions", "Precision", "DecodePlace", "CalibMethod"):
        assert getattr(edgepose, name) is getattr(edgepose.export, name)


def test_export_signature_takes_option_objects():
    params = inspect.signature(edgepose.export.api.export).parameters
    for name in ("target", "out", "precision", "decode", "quant", "parity"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert params["precision"].default == "fp32" and params["decode"].default == "auto"
    assert params["quant"].default is None and params["parity"].default is None
    assert not {"calib", "calib_size", "val", "max_ap_drop", "rel_tol", "px_tol"} & set(params)


def test_enums_are_their_strings():
    assert Precision.INT8 == "int8" and "int8" in {Precision.INT8} and {"int8": 1}[Precision.INT8] == 1
    assert f"{DecodePlace.HOST}" == "host" and str(CalibMethod.PERCENTILE) == "percentile"
    assert json.dumps({"precision": Precision.FP16}) == '{"precision": "fp16"}'
    assert QuantOptions(method="percentile").method is CalibMethod.PERCENTILE


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "entropy"}, "calibration method 'entropy': expected one of minmax, percentile"),
    ({"calib_size": 0}, r"calib_size=0 \(--calib-size\): expected an integer >= 1"),
    ({"val_size": 2.5}, "val_size=2.5"),
    ({"max_ap_drop": -1}, "max_ap_drop=-1 .*expected AP points >= 0"),
    ({"max_ap_drop": float("nan")}, "max_ap_drop=nan"),
    ({"auto_mixed": "yes"}, "auto_mixed='yes': expected True or False"),
    ({"sensitivity_samples": 0}, "sensitivity_samples=0"),
])
def test_quant_options_validate_once(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        QuantOptions(**kwargs)


def test_parity_options_validate():
    with pytest.raises(ConfigError, match="rel_tol=0: expected a relative error > 0"):
        ParityOptions(rel_tol=0)
    with pytest.raises(ConfigError, match="px_tol=-1"):
        ParityOptions(px_tol=-1)
    assert ParityOptions(rel_tol="1e-3").rel_tol == 1e-3


def test_flat_keywords_fold_into_the_objects():
    quant, parity = resolve_options(None, False, {"calib": "synthetic:8", "calib_method": "percentile",
                                                  "max_ap_drop": 2, "rel_tol": 1e-3})
    assert quant == QuantOptions(calib="synthetic:8", method=CalibMethod.PERCENTILE, max_ap_drop=2.0)
    assert parity == ParityOptions(enabled=False, rel_tol=1e-3)
    assert resolve_options(None, None, {}) == (QuantOptions(), ParityOptions())
    given = ParityOptions(px_tol=0.5)
    assert resolve_options(None, given, {})[1] is given


@pytest.mark.parametrize("quant, parity, flat, match", [
    (QuantOptions(), None, {"calib": "synthetic:8"}, r"calib= given together with quant=QuantOptions"),
    (None, ParityOptions(), {"px_tol": 1.0}, r"px_tol= given together with parity=ParityOptions"),
    ("int8", None, {}, "quant='int8': expected a QuantOptions"),
    (None, "yes", {}, "parity='yes': expected a ParityOptions"),
])
def test_conflicts_and_wrong_types(quant, parity, flat, match):
    with pytest.raises(ConfigError, match=match):
        resolve_options(quant, parity, flat)


def test_export_rejects_bad_choices_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="precision 'int4': expected one of fp32, fp16, int8"):
        edgepose.export(object(), target="onnx", out=tmp_path / "b", precision="int4")
    with pytest.raises(ConfigError, match="calib= given together with quant="):
        edgepose.export(object(), target="onnx", out=tmp_path / "b", quant=QuantOptions(), calib="synthetic:8")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_one_thread_rule(value):
    with pytest.raises(ConfigError, match=r"threads must be >= 1 \(an integer; unset or None: the default\), got"):
        check_threads(value)
    assert check_threads(None) is None and check_threads(3) == 3
