"""The head registry: one Head per output kind, and no kind comparisons outside edgepose/heads/."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from edgepose.errors import ConfigError
from edgepose.heads import BottomUpHead, Head, byo_kinds, get_head, head_names, import_kinds, register_head
from edgepose.models import create, list_models
from edgepose.runtimes.spec import ModelSpec

PACKAGE = Path(__file__).resolve().parents[2] / "edgepose"
# a model's output kind compared as a string: `kind == "..."`, `.kind != ...`, `kind in (...)`
KIND_TEST = re.compile(r"\bkind\s*(==|!=)|\bkind\s+(not\s+)?in\s*[(\[{]")


def kind_comparisons(root: Path) -> list[str]:
    hits = []
    for path in sorted(root.rglob("*.py")):
        if "heads" in path.relative_to(root).parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if KIND_TEST.search(line.split("#")[0]):
                hits.append(f"{path.relative_to(root.parent)}:{n}: {line.strip()}")
    return hits


def test_no_kind_comparisons_outside_heads():
    hits = kind_comparisons(PACKAGE)
    assert not hits, "kind comparisons outside edgepose/heads/ (dispatch through get_head(kind)):\n" + "\n".join(hits)


def test_the_grep_finds_a_planted_comparison(tmp_path):
    pkg = tmp_path / "edgepose"
    (pkg / "heads").mkdir(parents=True)
    (pkg / "heads" / "ok.py").write_text('if kind == "heatmap":\n    pass\n')
    (pkg / "runtime.py").write_text('x = 1\nif spec.kind in ("centernet",):\n    pass\n')
    assert kind_comparisons(pkg) == ['edgepose/runtime.py:2: if spec.kind in ("centernet",):']


def test_every_zoo_model_has_a_registered_head_and_named_outputs():
    for name in list_models():
        meta = create(name).edgepose_meta
        head = get_head(meta.kind)
        for decode in ("host", "graph"):
            names = head.output_names(meta.codec, decode)
            assert names and all(isinstance(n, str) for n in names), (name, decode)
        assert ModelSpec.from_meta(meta).bottom_up is head.bottom_up


def test_heads_know_their_place():
    assert isinstance(get_head("centernet"), BottomUpHead) and get_head("centernet").bottom_up
    assert not get_head("heatmap").bottom_up and get_head("heatmap").heatmaps
    assert get_head("heatmap").sample_mode == "single" and get_head("centernet").sample_mode == "multi"
    assert {"heatmap", "centernet", "regression"} <= set(head_names())
    assert "regression" not in byo_kinds()  # MoveNet-style regressors come in through `edgepose import`
    assert "simcc" not in import_kinds() and {"heatmap", "centernet", "regression"} <= set(import_kinds())
    with pytest.raises(ConfigError, match="edgepose import reads .* models, not 'simcc'"):
        get_head("simcc").import_codec(None, [[1, 17, 192]], 17, "argmax")


def test_unknown_head_and_codec_name_what_exists():
    with pytest.raises(ConfigError, match=r"unknown output kind \(head\) 'heatmp'.*did you mean 'heatmap'"):
        get_head("heatmp")
    with pytest.raises(ConfigError, match="output kind must be one of"):
        ModelSpec.from_dict({**ModelSpec.from_meta(create("simplebaseline-mnv2s-edge").edgepose_meta).to_dict(),
                             "kind": "pifpaf"})
    with pytest.raises(ConfigError, match="no graph-decoded outputs for codec 'dark'"):
        get_head("heatmap").output_names({"kind": "dark"}, "graph")


def test_registering_a_taken_name_is_an_error_and_a_new_head_is_one_class():
    class Other(Head):
        name = "heatmap"

    with pytest.raises(ConfigError, match="already registered"):
        register_head(Other())

    class Toy(Head):
        name = "toy-test-head"
        outputs = {"toy-test-head": {"host": ("maps",), "graph": ("keypoints",)}}

    try:
        register_head(Toy())
        assert get_head("toy-test-head").output_names({}, "host") == ["maps"]
        assert "toy-test-head" in head_names() and "toy-test-head" not in byo_kinds()
    finally:
        from edgepose.heads import base

        base._HEADS.pop("toy-test-head", None)


def test_bottom_up_pairing_matches_each_confident_person_to_the_nearest():
    from edgepose.runtimes.poses import Poses

    k = np.zeros((2, 17, 3), np.float32)
    k[0, :, :2], k[1, :, :2], k[..., 2] = 10.0, 100.0, 1.0
    ref = Poses(k, np.array([0.9, 0.1], np.float32), np.zeros((2, 4), np.float32))
    cand = Poses(k[::-1].copy(), np.array([0.5, 0.5], np.float32), np.zeros((2, 4), np.float32))
    pairs = get_head("centernet").pair_people(ref, cand, person_floor=0.3)
    assert len(pairs) == 1 and np.array_equal(pairs[0][1], k[0])  # the 0.1-score person is not paired
    assert len(get_head("heatmap").pair_people(ref, cand, 0.3)) == 2  # top-down: crop i is person i
