"""Which modules of a model an INT8 export quantizes (``--int8-modules``); the rest of the network stays float.

Post-training INT8 adds noise everywhere; a heatmap head reads joint positions from the shape of a peak a few cells
wide, so noise added at stride 4 moves the peak (measured on ``movenet-heatmap-edge``, docs/benchmarks.md: fully
INT8, 28 % of the confident joints keep their fp32 heatmap cell; with the trunk INT8 and the stride-4 pyramid and
head float, 69 %, for 0.4 ms more than fully INT8 and still 1.8x faster than fp32). A model can declare the modules
INT8 should cover as a class attribute ``int8_modules`` (PyTorch module names, e.g. ``("backbone",)``); the user
overrides it (``QuantOptions.int8_modules`` / ``--int8-modules``; ``"all"`` quantizes the whole network).

Each quantizer reads the module names from its own graph: ONNX node names (``/backbone/features.3/Conv``, ONNX
Runtime and TensorRT Q/DQ), OpenVINO friendly names (the same, converted from that ONNX), and litert-torch tensor
names (``.../MobileNetV2_backbone/Sequential_features/...``). Every op outside the named modules stays float
(ops, not only the conv layers: a quantized Add or Resize between two float convs would only add noise).
"""

from __future__ import annotations

import re

from edgepose.errors import ConfigError

ALL = "all"


def resolve_int8_modules(model, requested) -> tuple[str, ...]:
    """The module names INT8 covers: ``requested`` (a name, a list of names, or "all"), else the model's own
    ``int8_modules``; () means the whole network. Names that are not modules of ``model`` → ConfigError."""
    names = getattr(model, "int8_modules", None) if requested is None else requested
    if names is None or names == ALL or (not isinstance(names, str) and list(names) == [ALL]):
        return ()
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise ConfigError(f"int8_modules is empty; expected module names of {_model_name(model)} (top level: "
                          f"{', '.join(_children(model))}) or {ALL!r}")
    known = {n for n, _ in model.named_modules() if n}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"int8_modules names {unknown[0]!r}, which is not a module of "
                          f"{_model_name(model)}; expected one of its modules (top level: "
                          f"{', '.join(_children(model))}) or {ALL!r}")
    return names


def _children(model) -> list[str]:
    return [n for n, _ in model.named_children()]


def _model_name(model) -> str:
    meta = getattr(model, "edgepose_meta", None)
    return getattr(meta, "name", type(model).__name__)


def describe(modules: tuple[str, ...]) -> str | list[str]:
    """The manifest's record: "all" or the module names."""
    return list(modules) if modules else ALL


# ---- ONNX (ONNX Runtime, TensorRT Q/DQ) and OpenVINO: '/'-separated scope names --------------------------
# the network exported with its in-graph decoder sits under this attribute (edgepose.codecs.graph)
WRAPPER = "model."


def module_path(name: str) -> str:
    """The dotted PyTorch module path an ONNX node name (or an OpenVINO friendly name converted from one) comes
    from, op names trailing: the exporter writes a container's children either relative ('/backbone/blocks.0/
    depthwise/Conv') or with the container's path repeated ('/features/features.0/features.0.0/Conv')."""
    parts: list[str] = []
    for segment in name.strip("/").split("/"):
        # the repeated style: the segment starts with the path's tail ('conv.0' + '.0'); extend by the rest
        tail = next((k for k in range(len(parts)) if segment.startswith(".".join(parts[k:]) + ".")), None)
        parts += segment[len(".".join(parts[tail:])) + 1:].split(".") if tail is not None else segment.split(".")
    return ".".join(parts)


def in_scope(name: str, modules: tuple[str, ...]) -> bool:
    """Whether an ONNX node name (or an OpenVINO friendly name) lies inside one of ``modules``."""
    path = module_path(name)
    paths = (path, path[len(WRAPPER):]) if path.startswith(WRAPPER) else (path,)
    return any(p == m or p.startswith(m + ".") for p in paths for m in modules)


def float_names(names: list[str], modules: tuple[str, ...], what: str) -> list[str]:
    """The names of ``names`` outside ``modules`` (kept float); ConfigError when none lies inside."""
    if not modules:
        return []
    for module in modules:  # each name must cover something: a scope that misses one quantizes less than asked
        if not any(in_scope(n, (module,)) for n in names):
            raise ConfigError(f"int8_modules {module} matched no op of the {what} (its names start with "
                              f"{', '.join(sorted({_head(n) for n in names})[:4])}); expected module names the "
                              "exporter keeps in its op names")
    return [n for n in names if not in_scope(n, modules)]


def inside_names(names: list[str], modules: tuple[str, ...]) -> list[str]:
    """The names of ``names`` inside ``modules`` (all of them when ``modules`` is empty): the layers INT8 covers,
    the candidates ``--auto-mixed`` ranks."""
    return [n for n in names if not modules or in_scope(n, modules)]


def _head(name: str) -> str:
    parts = name.split("/")
    return "/".join(parts[:2]) + "/" if len(parts) > 2 else name


# ---- TFLite (litert-torch): '<module class>_<attribute>' path segments ------------------------------------
# litert-torch names a tensor by the call stack of the modules that made it, one '<pkg.Class>_<attribute>' segment
# per module: a container that is indexed, never called (ModuleList, ModuleDict), leaves no segment
# ('.../MobileNetV2Backbone_backbone/InvertedResidual_1/...' for 'backbone.blocks.1'), so two modules can share a
# call path (HRNet's fuse_layers.0.1 and fuse_layers.2.1); such names are refused rather than guessed. A Sequential
# that is iterated instead of called leaves no segment either, which no type tells: its names match no layer (error).
def _uncalled(module) -> bool:
    import torch.nn as nn

    return isinstance(module, (nn.ModuleList, nn.ModuleDict))


def call_path(model, module: str) -> tuple[str, ...]:
    """``module``'s segments as litert-torch's tensor names hold them ('Class_attribute'), containers dropped."""
    kept, current = [], model
    for part in module.split("."):
        current = current.get_submodule(part)
        if not _uncalled(current):
            kept.append(f"{type(current).__name__}_{part}")
    return tuple(kept)


def call_paths(model) -> dict[tuple[str, ...], list[str]]:
    """Every called module's call path → the module names that have it (more than one: ambiguous)."""
    paths: dict[tuple[str, ...], list[str]] = {}
    for name, m in model.named_modules():
        if name and not _uncalled(m):
            paths.setdefault(call_path(model, name), []).append(name)
    return paths


def _called(model, module: str) -> list[str]:
    """``module`` itself, or its called descendants when it is an uncalled container (its ops are theirs)."""
    container = model.get_submodule(module)
    if not _uncalled(container):
        return [module]
    found = [n for child, _ in container.named_children() for n in _called(model, f"{module}.{child}")]
    if not found:
        raise ConfigError(f"int8_modules {module} is an empty {type(container).__name__}; expected a module that "
                          "runs ops")
    return found


def _contains(path: tuple[str, ...], part: tuple[str, ...]) -> bool:
    return any(path[i:i + len(part)] == part for i in range(len(path) - len(part) + 1))


def tflite_patterns(model, modules: tuple[str, ...]) -> dict[str, str]:
    """Per name of ``modules``, the regex of the tensor names of its ops (ConfigError when a name is ambiguous)."""
    every, patterns = call_paths(model), {}
    for module in modules:
        paths = []
        for called in _called(model, module):
            path = call_path(model, called)
            # the pattern is not anchored (wrappers add segments above the model): any module whose call path holds
            # this one, and that is not inside the request, would be matched too
            other = next((n for p, names in every.items() if _contains(p, path) for n in names
                          if not any(n == m or n.startswith(m + ".") for m in modules)), None)
            if other is not None:
                raise ConfigError(f"int8_modules {module}: TFLite's tensor names cannot tell {called} from {other} "
                                  "(ModuleList / ModuleDict levels leave no name); expected a module that encloses "
                                  "both, or --int8-modules all")
            paths.append("".join(rf"/(?:[^/;]*\.)?{re.escape(seg)}(?=[/;]|$)" for seg in path))
        patterns[module] = "|".join(paths)
    return patterns


def tflite_pattern(model, modules: tuple[str, ...]) -> str:
    """Regex of the tensor names of the ops inside ``modules`` (ConfigError when a name is ambiguous)."""
    return "|".join(tflite_patterns(model, modules).values())


def float_scope(inside: str) -> str:
    """ai-edge-quantizer scope regex of the ops whose tensor names do not match ``inside``."""
    return rf"^(?!.*(?:{inside}))"
