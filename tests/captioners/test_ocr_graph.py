"""The text detector's rewritten graph (capdex.captioners.ocr_graph, issue 17): the same
probability maps and line boxes as RapidOCR's own model on real photos, each fold checked on a
graph built here (a padded convolution keeps its zero padding), and the cache."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from capdex.captioners import ocr_graph
from capdex.captioners.ocr import (
    DETECT_SIDE,
    OcrEngine,
    _detector_input,
    _detector_model,
    _fit,
    _rgb_array,
)
from capdex.captioners.ocr_graph import fuse, fused_detector
from tests.captioners.ocr_photos import BASE_PHOTOS, PHRASES, _package_file, draw_text


def _session(model: bytes | str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def detectors() -> tuple[ort.InferenceSession, ort.InferenceSession, dict[str, int]]:
    source = _detector_model()
    model, counts = fuse(onnx.load(str(source)))
    return _session(str(source)), _session(model.SerializeToString()), counts


def _photos() -> list[tuple[str, Image.Image]]:
    """Real photos at the detector's scale, as they are and with a sign drawn on."""
    photos = []
    for i, (module, resource) in enumerate(BASE_PHOTOS):
        path = _package_file(module, resource)
        if path is None:
            continue
        with Image.open(path) as opened:
            photo = _fit(opened.convert("RGB").resize((1600, 1200)), DETECT_SIDE)
        photos.append((resource, photo))
        photos.append((f"{resource} + text", draw_text(photo.copy(), PHRASES[i], 0.04, i % 2 == 0, i)))
    return photos


def test_every_chain_of_the_shipped_detector_is_folded(detectors) -> None:
    _, fused, counts = detectors
    assert counts == {"conv scale+shift": 28, "hard-swish": 24, "activation scale+shift": 24,
                      "conv-transpose bias+norm": 2, "excite residual": 8}
    model = onnx.load(str(_detector_model()))
    before = {n.op_type for n in model.graph.node}
    after, _ = fuse(model)
    ops = [n.op_type for n in after.graph.node]
    assert {"Clip", "Div", "BatchNormalization"} & before
    assert not {"Clip", "Div"} & set(ops)  # hard-swish is one node now
    assert ops.count("HardSwish") == 24


def test_the_rewritten_detector_finds_the_same_lines_on_real_photos(detectors) -> None:
    original, fused, _ = detectors
    engine = OcrEngine()
    engine.load()
    postprocess = engine._engine.text_det.postprocess_op
    photos = _photos()
    assert len(photos) >= 16
    lines = 0
    for name, photo in photos:
        pixels = _detector_input(_rgb_array(photo))
        want = original.run(None, {"x": pixels})[0]
        got = fused.run(None, {"x": pixels})[0]
        assert np.abs(want - got).max() <= 1e-3, name  # rounding: ~1e-4 at most here
        size = (photo.height, photo.width)
        want_boxes, _ = postprocess(want[:, :, :size[0], :size[1]], size)
        got_boxes, _ = postprocess(got[:, :, :size[0], :size[1]], size)
        assert len(want_boxes) == len(got_boxes), name
        np.testing.assert_allclose(got_boxes, want_boxes, atol=0.5, err_msg=name)
        lines += len(want_boxes)
    assert lines >= 10  # the drawn signs are found, so the boxes compared are real ones


def _tiny_model(padded_reader: bool) -> bytes:
    """Conv → scale+shift → hard-swish (4 nodes) → scale+shift → a reader: a padded 3x3
    depthwise conv (the shift may not be folded into it) or a 1x1 conv (it may)."""
    rng = np.random.default_rng(0)
    consts = {
        "w0": rng.normal(0, 0.5, (4, 3, 3, 3)), "b0": rng.normal(0, 0.1, 4),
        "a": np.array(1.7), "b": np.array(0.4), "three": np.array(3.0), "zero": np.array(0.0),
        "six": np.array(6.0), "c": np.array(0.6), "d": np.array(-0.9),
        "w1": rng.normal(0, 0.5, (4, 1, 3, 3) if padded_reader else (5, 4, 1, 1)),
        "b1": rng.normal(0, 0.1, 4 if padded_reader else 5),
    }
    reader = (helper.make_node("Conv", ["z", "w1", "b1"], ["y"], group=4, kernel_shape=[3, 3],
                               pads=[1, 1, 1, 1]) if padded_reader
              else helper.make_node("Conv", ["z", "w1", "b1"], ["y"], kernel_shape=[1, 1]))
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["a", "c0"], ["m0"]), helper.make_node("Add", ["m0", "b"], ["s0"]),
        helper.make_node("Add", ["s0", "three"], ["h0"]),
        helper.make_node("Clip", ["h0", "zero", "six"], ["h1"]),
        helper.make_node("Mul", ["s0", "h1"], ["h2"]), helper.make_node("Div", ["h2", "six"], ["hs"]),
        helper.make_node("Mul", ["c", "hs"], ["m1"]), helper.make_node("Add", ["m1", "d"], ["z"]),
        reader,
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, 8, 8])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)]).SerializeToString()


@pytest.mark.parametrize("padded_reader", [True, False])
def test_folds_keep_the_arithmetic_to_the_border(padded_reader: bool) -> None:
    original = _tiny_model(padded_reader)
    model, counts = fuse(onnx.load_from_string(original))
    onnx.checker.check_model(model)
    assert counts["conv scale+shift"] == 1 and counts["hard-swish"] == 1
    assert counts["activation scale+shift"] == 1
    ops = [n.op_type for n in model.graph.node]
    # a padded k x k reader gets its own per-channel 1x1 conv; a 1x1 reader takes the shift
    assert ops == (["Conv", "HardSwish", "Conv", "Conv"] if padded_reader
                   else ["Conv", "HardSwish", "Conv"])
    x = np.random.default_rng(1).normal(0, 2, (1, 3, 8, 8)).astype(np.float32)
    want = _session(original).run(None, {"x": x})[0]
    got = _session(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)  # border pixels included


def test_the_rewrite_is_cached_and_made_again_when_the_model_changes(
        tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "det.onnx"
    source.write_bytes(_detector_model().read_bytes())
    cache = tmp_path / "cache"
    first = fused_detector(source, cache)
    assert isinstance(first, Path) and first.parent == cache
    assert _session(str(first)).get_inputs()[0].name == "x"

    def no_rewrite(model):
        raise AssertionError("rewritten again")

    monkeypatch.setattr(ocr_graph, "fuse", no_rewrite)
    assert fused_detector(source, cache) == first  # read from the cache
    monkeypatch.undo()
    os.utime(source, ns=(1, 1))  # another model (another size or time): another file
    second = fused_detector(source, cache)
    assert second != first and isinstance(second, Path)
    assert sorted(cache.iterdir()) == [second]  # the stale rewrite is gone


def test_a_rewrite_that_computes_differently_is_not_used(tmp_path: Path, monkeypatch, caplog) -> None:
    real_fuse = ocr_graph.fuse

    def wrong(model):
        fused, counts = real_fuse(model)
        first = fused.graph.initializer[0]
        array = numpy_helper.to_array(first) * 1.5
        first.CopyFrom(numpy_helper.from_array(array.astype(np.float32), first.name))
        return fused, counts

    monkeypatch.setattr(ocr_graph, "fuse", wrong)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING):
        assert fused_detector(_detector_model(), cache) == _detector_model()
    assert "differs" in caplog.text
    assert not cache.exists()


def test_a_cache_that_cannot_be_written_still_gives_the_rewrite(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    model = fused_detector(_detector_model(), blocked / "ocr")
    assert isinstance(model, bytes)
    assert _session(model).get_inputs()[0].name == "x"


def test_the_engine_detects_with_the_rewritten_model(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    engine = OcrEngine()
    engine.load()
    cached = list((tmp_path / "capdex" / "ocr").glob("*.onnx"))
    assert len(cached) == 1
    session = engine._engine.text_det.infer.session
    assert session._model_path == str(cached[0])
    assert session.get_session_options().enable_cpu_mem_arena
    photo = draw_text(Image.new("RGB", (800, 600), (235, 235, 230)), ("Gate B22",), 0.08, False, 2)
    assert engine.read(photo).text.replace(" ", "") == "GateB22"
