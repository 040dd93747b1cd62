"""The backend registry (:mod:`edgepose.backends`) is the one place backend names are spelled: lookups,
lazy runtime classes, and the lists the CLI, doctor, device profiles and reports derive from it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import edgepose
from edgepose.backends import (
    Backend,
    backend_names,
    backends,
    backends_for_target,
    get_backend,
    native_backend,
    register_backend,
    target_names,
)
from edgepose.errors import UnknownNameError

SOURCE = Path(edgepose.__file__).parent
REGISTRY = SOURCE / "backends.py"


def _names() -> set[str]:
    return set(backend_names()) | set(target_names())


def _literal_strings(node: ast.AST) -> list[str]:
    """The string constants a tuple / list / set literal lists, or a dict literal has as keys or values."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = node.elts
    elif isinstance(node, ast.Dict):
        items = [*(k for k in node.keys if k is not None), *node.values]
    else:
        return []
    return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]


def hard_coded_lists(source: str, names: set[str]) -> list[tuple[int, list[str]]]:
    """(line, names) of every literal that spells two or more backend / target names: a tuple, list, set or dict,
    or one string holding a comma-separated list ("onnx,openvino")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        hits = sorted({s for s in _literal_strings(node) if s in names})
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            hits = sorted({s for s in re.split(r"\s*,\s*", node.value) if s in names})
        if len(hits) >= 2:
            found.append((node.lineno, hits))
    return found


def test_registry_lookup_and_close_match():
    assert get_backend("openvino").runtime == "OpenVINORuntime"
    with pytest.raises(UnknownNameError, match=r"unknown backend 'onnxruntim'; did you mean 'onnxruntime'\?"):
        get_backend("onnxruntim")
    assert [b.name for b in backends()] == list(backend_names())
    assert len(set(target_names())) == len(target_names())


def test_registration_is_loud_on_duplicates():
    with pytest.raises(ValueError, match="registered twice"):
        register_backend(get_backend("tflite"))
    with pytest.raises(ValueError, match="target 'tflite' already belongs to backend 'tflite'"):
        register_backend(Backend("tflite2", "TFLite 2", target="tflite", runtime="X", extra="tflite"))
    assert "tflite2" not in backend_names()


def test_backends_for_target_put_the_native_backend_first():
    for backend in backends():
        assert native_backend(backend.target) is backend
        assert backends_for_target(backend.target)[0] is backend
    assert [b.name for b in backends_for_target(get_backend("tensorrt").target)][0] == "tensorrt"
    assert native_backend("no-such-target") is None and backends_for_target("no-such-target") == ()


@pytest.mark.parametrize("name", backend_names())
def test_runtime_class_imports_lazily(name):
    """The runtime subpackage imports without its backend installed and names a Runtime subclass for this backend;
    availability answers without raising."""
    from edgepose.runtimes.base import Runtime

    backend = get_backend(name)
    cls = backend.runtime_class()
    assert issubclass(cls, Runtime) and cls.backend == name
    assert backend.module == f"edgepose.runtimes.{name}"
    assert isinstance(backend.is_available(), bool)
    assert backend.is_available() or backend.unavailable_reason()


def test_export_targets_take_backend_package_and_precisions_from_the_registry():
    from edgepose.export.targets import TARGETS
    from edgepose.export.targets.tflite import CONVERTERS

    assert tuple(TARGETS) == target_names()
    for target in TARGETS.values():
        backend = native_backend(target.name)
        assert (target.backend, target.package, target.precisions) == (backend.name, backend.package,
                                                                         backend.precisions)
    assert set(CONVERTERS) == set(TARGETS["tflite"].precisions)


def _parser_choices(command: str, option: str):
    from edgepose.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.choices and command in a.choices).choices[command]
    return next(a for a in sub._actions if option in a.option_strings)


@pytest.mark.parametrize("command", ["bench", "verify"])
def test_cli_backend_choices_are_the_registry(command):
    assert tuple(_parser_choices(command, "--backend").choices) == backend_names()


def test_cli_target_lists_are_the_registry():
    from edgepose.commands.export import TARGET_NAMES

    assert TARGET_NAMES == (*target_names(), "all")
    assert _parser_choices("demo", "--targets").default == ",".join(target_names())


def test_derived_lists_follow_the_registry():
    from edgepose.commands.info import PACKAGES as DOCTOR
    from edgepose.devices.detect import PACKAGES as FINGERPRINT
    from edgepose.devices.profiles import KNOWN_TARGETS, PROFILES
    from edgepose.profiling.plots import TARGET_COLOURS
    from edgepose.utils.lazy import EXTRAS

    distributions = [d for b in backends() for d in b.distributions]
    assert [p for p, _ in DOCTOR if p in distributions] == distributions
    assert [p for p in FINGERPRINT if p in distributions] == distributions
    assert KNOWN_TARGETS == target_names()
    assert all(set(p.targets) <= set(target_names()) for p in PROFILES.values())
    assert set(target_names()) <= set(TARGET_COLOURS)
    assert all(EXTRAS[m] == b.extra for b in backends() for m in b.imports)


def test_the_scan_finds_hard_coded_lists():
    names = {"onnx", "onnxruntime", "openvino", "tflite", "tensorrt"}
    src = ('A = ("onnxruntime", "openvino")\nB = ["tflite", "x", "tensorrt"]\nC = {"onnx": 1, "tflite": 2}\n'
           'D = "onnx,openvino"\nE = "openvino"\nF = ("openvino", "fp16")\n')
    assert hard_coded_lists(src, names) == [(1, ["onnxruntime", "openvino"]), (2, ["tensorrt", "tflite"]),
                                            (3, ["onnx", "tflite"]), (4, ["onnx", "openvino"])]


def test_backend_names_are_spelled_only_in_the_registry():
    """No tuple / list / set / dict literal (nor comma-separated string) outside the registry lists two or more
    backend or target names: derive such lists from edgepose.backends instead."""
    offenders = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path == REGISTRY:
            continue
        for line, hits in hard_coded_lists(path.read_text(), _names()):
            offenders.append(f"{path.relative_to(SOURCE.parent)}:{line}: {', '.join(hits)}")
    assert not offenders, "hard-coded backend / target lists (derive them from the registry):\n" + "\n".join(
        offenders)
