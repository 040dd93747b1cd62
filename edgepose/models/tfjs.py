"""Read a TensorFlow.js graph model (``model.json`` + weight shard(s)) with numpy only.

A TFJS graph model is a JSON file with the graph (``modelTopology.node``: op, inputs, attributes) and a
weight manifest (``weightsManifest[i].weights``: name, shape, dtype, optional ``quantization``) whose
tensors are stored back to back, in manifest order, in the group's ``.bin`` files (little-endian).

    model = read_tfjs("movenet-lightning.json")
    model.weights["…/Conv1/Conv2D_weights"]  # numpy array, float32 (stored as float16 → upcast)
    model.consumers("…/Conv1/Conv2D_weights")  # graph nodes that read it

Every malformed input — a manifest entry without name / shape / dtype, an unknown dtype, a shard shorter
than the manifest says — is a one-line :class:`~edgepose.errors.ConvertError`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.errors import ConvertError

# stored dtype → numpy dtype; TFJS writes little-endian
_DTYPES = {"float32": "<f4", "float16": "<f2", "int32": "<i4", "uint8": "u1", "uint16": "<u2", "bool": "u1",
           "int8": "i1", "int16": "<i2"}


@dataclass
class TfjsNode:
    name: str
    op: str
    inputs: list[str]
    attr: dict

    def ints(self, key: str) -> list[int]:
        return [int(v) for v in self.attr.get(key, {}).get("list", {}).get("i", [])]

    def string(self, key: str) -> str:
        raw = self.attr.get(key, {}).get("s", "")
        return base64.b64decode(raw).decode() if raw else ""

    def strings(self, key: str) -> list[str]:
        return [base64.b64decode(s).decode() for s in self.attr.get(key, {}).get("list", {}).get("s", [])]


@dataclass
class TfjsModel:
    path: Path
    generated_by: str
    nodes: list[TfjsNode]
    weights: dict[str, np.ndarray]
    signature: dict = field(default_factory=dict)

    def node(self, name: str) -> TfjsNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConvertError(f"{self.path}: the graph has no node named {name!r}")

    def consumers(self, tensor: str) -> list[TfjsNode]:
        """Nodes that take ``tensor`` (a node or weight name) as an input."""
        return [n for n in self.nodes if any(i.split(":")[0] == tensor for i in n.inputs)]


def read_tfjs(json_path: str | Path) -> TfjsModel:
    """Parse ``json_path`` and decode every weight its manifest declares (float16 → float32)."""
    path = Path(json_path)
    if not path.is_file():
        raise ConvertError(f"TFJS model file not found: {path} (expected a model.json of a TFJS graph model)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConvertError(f"{path} is not a readable JSON file ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, dict) or "modelTopology" not in doc or "weightsManifest" not in doc:
        raise ConvertError(f"{path} is not a TFJS graph model (expected keys 'modelTopology' and "
                           f"'weightsManifest', got {sorted(doc) if isinstance(doc, dict) else type(doc).__name__})")
    nodes = [TfjsNode(n.get("name", ""), n.get("op", ""), list(n.get("input", [])), n.get("attr", {}))
             for n in doc["modelTopology"].get("node", [])]
    weights: dict[str, np.ndarray] = {}
    for group in doc["weightsManifest"]:
        weights.update(_read_group(path, group))
    return TfjsModel(path, str(doc.get("generatedBy", "")), nodes, weights, doc.get("signature", {}))


def _entry(path: Path, i: int, w) -> tuple[str, tuple[int, ...], str]:
    """(name, shape, stored dtype) of manifest entry ``i``, checked."""
    if not isinstance(w, dict) or not {"name", "shape", "dtype"} <= set(w):
        raise ConvertError(f"{path}: weight manifest entry {i} needs 'name', 'shape' and 'dtype', got {w!r:.120}")
    shape = w["shape"]
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ConvertError(f"{path}: weight {w['name']!r} has shape {shape!r}, expected a list of sizes >= 0")
    stored = w["dtype"]
    quant = w.get("quantization")
    if quant is not None:
        stored = quant.get("dtype") if isinstance(quant, dict) else None
        if stored not in ("float16",) or w["dtype"] != "float32":
            raise ConvertError(f"{path}: weight {w['name']!r} has quantization {quant!r}; this reader decodes "
                               "float16-stored float32 weights only (no affine uint8/uint16 quantization)")
    if stored not in _DTYPES:
        raise ConvertError(f"{path}: weight {w['name']!r} has dtype {stored!r}; expected one of {sorted(_DTYPES)}")
    return str(w["name"]), tuple(shape), stored


def _read_group(path: Path, group: dict) -> dict[str, np.ndarray]:
    shards = group.get("paths", []) if isinstance(group, dict) else []
    if not shards:
        raise ConvertError(f"{path}: a weight group names no .bin files ('paths' is empty or missing)")
    blobs = []
    for name in shards:
        shard = path.parent / name
        if not shard.is_file():
            raise ConvertError(f"{path}: weight shard {shard} not found (the manifest lists {shards})")
        blobs.append(shard.read_bytes())
    data = b"".join(blobs)
    entries = [_entry(path, i, w) for i, w in enumerate(group.get("weights", []))]
    need = sum(int(np.prod(s, dtype=np.int64)) * np.dtype(_DTYPES[d]).itemsize for _, s, d in entries)
    if len(data) != need:
        what = "truncated" if len(data) < need else "longer than its manifest"
        raise ConvertError(f"{path}: weight shard(s) {', '.join(shards)} hold {len(data)} bytes, the manifest "
                           f"declares {need}: the shard is {what}")
    out, offset = {}, 0
    for name, shape, stored in entries:
        dt = np.dtype(_DTYPES[stored])
        count = int(np.prod(shape, dtype=np.int64))
        arr = np.frombuffer(data, dt, count, offset).reshape(shape)
        offset += count * dt.itemsize
        out[name] = arr.astype(np.float32) if np.issubdtype(dt, np.floating) else \
            arr.astype(np.int64 if np.issubdtype(dt, np.signedinteger) else dt)
    return out
