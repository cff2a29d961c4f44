"""The PP-OCR text detector's ONNX graph with its exporter's elementwise chains folded away.

Paddle2ONNX writes each of the detector's activations as five to eight elementwise nodes: a
scalar scale and shift after every convolution, hard-swish as Add(3) → Clip(0, 6) → Mul → Div(6),
another scale and shift after it, and `x + x * s` in every squeeze-excite block. ONNX Runtime
fuses none of them, and each one walks a full feature map (and leaves its NCHWc layout and comes
back): measured at 960x736 on 2 cores, 112 ms a photo, of which convolutions 34%. Folded into
the convolutions (and hard-swish as one HardSwish node, which ONNX Runtime fuses into its
convolution), the same arithmetic takes ~70 ms: benchmarks/ocr_detector.py measures 1.67x on
the sharp regions of real photographs, where the OCR gate still runs the detector (issue 17).
The maps differ from the original's by float rounding only (up to ~1e-4 on real photos);
`fused_detector` checks each model it rewrites and otherwise keeps the original.

The rewritten model is cached in the user cache (`onnx` is imported, ~0.7 s, only to write it).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

#: Bump when the rewrite changes: cached models of another format are made again.
FUSE_FORMAT = 1
#: HardSwish needs opset 14; the detector's other ops mean the same there as at its opset 12.
_OPSET = 14
#: Largest difference from the original model's output a rewrite may make (a probability; on
#: real photos rounding makes up to ~1e-4, a wrong fold makes far more).
TOLERANCE = 1e-3


class _Graph:
    """The nodes of an ONNX graph with its constants (initializers and Constant nodes) as
    arrays, and who consumes each value; `fold_*` rewrite the node list in place."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        graph = model.graph
        self.model = model
        self.constants: dict[str, np.ndarray] = {
            i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.nodes: list[Any] = []
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            else:
                self.nodes.append(node)
        self.outputs = {o.name for o in graph.output}
        self._index()
        self._fresh = 0

    def _index(self) -> None:
        self.consumers: dict[str, list[Any]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def name(self, stem: str) -> str:
        self._fresh += 1
        return f"{stem}__fused{self._fresh}"

    def scalar(self, name: str) -> float | None:
        value = self.constants.get(name)
        return float(value.reshape(())) if value is not None and value.size == 1 else None

    def only_consumer(self, value: str, op_type: str) -> Any | None:
        """The one node consuming `value`, if it is an `op_type` and `value` is no graph output."""
        consumers = self.consumers.get(value, [])
        if len(consumers) != 1 or value in self.outputs or consumers[0].op_type != op_type:
            return None
        return consumers[0]

    def other_input(self, node: Any, value: str) -> str | None:
        rest = [i for i in node.input if i != value]
        return rest[0] if len(rest) == 1 and len(node.input) == 2 else None

    def scale_shift(self, value: str) -> tuple[float, float, str, list[Any]] | None:
        """(a, b, output, [the two nodes]) when `value` only goes through Mul(a) then Add(b),
        scalars."""
        mul = self.only_consumer(value, "Mul")
        a = self.scalar(self.other_input(mul, value) or "") if mul is not None else None
        if mul is None or a is None:
            return None
        add = self.only_consumer(mul.output[0], "Add")
        b = self.scalar(self.other_input(add, mul.output[0]) or "") if add is not None else None
        if add is None or b is None:
            return None
        return a, b, add.output[0], [mul, add]

    def add_constant(self, stem: str, array: np.ndarray) -> str:
        name = self.name(stem)
        self.constants[name] = array
        return name

    def replace(self, old: Any, new: Any) -> None:
        """Put `new` where `old` was in the node list (its order is the graph's)."""
        self.nodes[self.nodes.index(old)] = new
        self._index()

    def remove(self, nodes: list[Any]) -> None:
        gone = {id(n) for n in nodes}
        self.nodes = [n for n in self.nodes if id(n) not in gone]
        self._index()

    def write(self) -> Any:
        """The model with the rewritten nodes and every constant used as an initializer."""
        from onnx import numpy_helper

        graph = self.model.graph
        used = {name for node in self.nodes for name in node.input}
        del graph.node[:]
        graph.node.extend(self.nodes)
        del graph.initializer[:]
        graph.initializer.extend(numpy_helper.from_array(array, name)
                                 for name, array in self.constants.items() if name in used)
        for opset in self.model.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = max(opset.version, _OPSET)
        return self.model


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _conv_weights(graph: _Graph, conv: Any) -> tuple[np.ndarray, np.ndarray] | None:
    import numpy as np

    weight = graph.constants.get(conv.input[1])
    if weight is None:
        return None
    if len(conv.input) > 2 and conv.input[2]:
        bias = graph.constants.get(conv.input[2])
        if bias is None:
            return None
    else:
        bias = np.zeros(weight.shape[0], dtype=weight.dtype)
    return weight, bias


def _set_conv_weights(graph: _Graph, conv: Any, weight: np.ndarray, bias: np.ndarray) -> None:
    conv.input[1] = graph.add_constant(conv.input[1], weight.astype("float32"))
    name = graph.add_constant(conv.input[1], bias.astype("float32"))
    if len(conv.input) > 2:
        conv.input[2] = name
    else:
        conv.input.append(name)


def fold_conv_scale_shift(graph: _Graph) -> int:
    """Conv → Mul(a) → Add(b) becomes one Conv with weights a·W and bias a·bias + b."""
    folded = 0
    for conv in list(graph.nodes):
        if conv.op_type != "Conv":
            continue
        found = graph.scale_shift(conv.output[0])
        weights = _conv_weights(graph, conv)
        if found is None or weights is None:
            continue
        a, b, output, chain = found
        weight, bias = weights
        _set_conv_weights(graph, conv, weight * a, bias * a + b)
        conv.output[0] = output
        graph.remove(chain)
        folded += 1
    return folded


def fold_hard_swish(graph: _Graph) -> int:
    """x · Clip(x + 3, 0, 6) / 6 (four nodes) becomes HardSwish(x)."""
    from onnx import helper

    folded = 0
    for add in list(graph.nodes):
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        x = add.input[0]
        if graph.scalar(add.input[1]) != 3.0:
            continue
        clip = graph.only_consumer(add.output[0], "Clip")
        if clip is None or [graph.scalar(i) for i in clip.input[1:]] != [0.0, 6.0]:
            continue
        mul = graph.only_consumer(clip.output[0], "Mul")
        if mul is None or graph.other_input(mul, clip.output[0]) != x:
            continue
        div = graph.only_consumer(mul.output[0], "Div")
        if div is None or div.input[0] != mul.output[0] or graph.scalar(div.input[1]) != 6.0:
            continue
        swish = helper.make_node("HardSwish", [x], [div.output[0]], name=graph.name("hardswish"))
        graph.replace(add, swish)
        graph.remove([clip, mul, div])
        folded += 1
    return folded


def fold_activation_scale_shift(graph: _Graph) -> int:
    """HardSwish → Mul(c) → Add(d): folded into the 1x1 convolutions reading it (exactly:
    c·W and bias + d·ΣW), else one per-channel 1x1 Conv, which stays in ONNX Runtime's NCHWc
    layout. Not into a padded k×k convolution: its zero padding would become d."""
    from onnx import helper

    folded = 0
    for swish in list(graph.nodes):
        if swish.op_type != "HardSwish":
            continue
        found = graph.scale_shift(swish.output[0])
        if found is None:
            continue
        c, d, output, chain = found
        readers = graph.consumers.get(output, [])
        pointwise = output not in graph.outputs and readers and all(
            r.op_type == "Conv" and r.input[0] == output and _conv_weights(graph, r) is not None
            and _attributes(r).get("kernel_shape") == [1, 1]
            and not any(_attributes(r).get("pads", [0])) for r in readers)
        if pointwise:
            for reader in readers:
                weight, bias = _conv_weights(graph, reader)  # type: ignore[misc]
                _set_conv_weights(graph, reader, weight * c, bias + d * weight.sum(axis=(1, 2, 3)))
                reader.input[0] = swish.output[0]
        else:
            channels = _channels_before(graph, swish)
            if channels is None:
                continue
            import numpy as np

            weight = graph.add_constant("scale", np.full((channels, 1, 1, 1), c, np.float32))
            bias = graph.add_constant("shift", np.full((channels,), d, np.float32))
            scale = helper.make_node("Conv", [swish.output[0], weight, bias], [output],
                                     name=graph.name("scale_shift"), group=channels,
                                     kernel_shape=[1, 1])
            graph.nodes.insert(graph.nodes.index(swish) + 1, scale)
        graph.remove(chain)
        folded += 1
    return folded


def _channels_before(graph: _Graph, node: Any) -> int | None:
    """The channels of `node`'s input when a Conv with constant weights makes it."""
    for producer in graph.nodes:
        if producer.output and producer.output[0] == node.input[0] and producer.op_type == "Conv":
            weights = _conv_weights(graph, producer)
            return int(weights[0].shape[0]) if weights is not None else None
    return None


def fold_transpose_bias_norm(graph: _Graph) -> int:
    """ConvTranspose → Add(per-channel bias) [→ BatchNormalization] becomes one ConvTranspose."""
    import numpy as np

    folded = 0
    for deconv in list(graph.nodes):
        if deconv.op_type != "ConvTranspose" or _attributes(deconv).get("group", 1) != 1:
            continue
        weight = graph.constants.get(deconv.input[1])
        add = graph.only_consumer(deconv.output[0], "Add")
        bias_name = graph.other_input(add, deconv.output[0]) if add is not None else None
        bias = graph.constants.get(bias_name or "")
        if (add is None or weight is None or len(deconv.input) > 2 or bias is None
                or bias.size != weight.shape[1]):
            continue
        bias = bias.reshape(-1)
        dropped, output = [add], add.output[0]
        norm = graph.only_consumer(output, "BatchNormalization")
        if norm is not None and len(norm.output) == 1 and all(
                i in graph.constants for i in norm.input[1:]):
            gamma, beta, mean, var = (graph.constants[i].reshape(-1) for i in norm.input[1:])
            epsilon = _attributes(norm).get("epsilon", 1e-5)
            scale = gamma / np.sqrt(var + np.float32(epsilon))
            weight = weight * scale.reshape(1, -1, 1, 1)
            bias = (bias - mean) * scale + beta
            dropped, output = [add, norm], norm.output[0]
        deconv.input[1] = graph.add_constant(deconv.input[1], weight.astype(np.float32))
        deconv.input.append(graph.add_constant("bias", bias.astype(np.float32)))
        deconv.output[0] = output
        graph.remove(dropped)
        folded += 1
    return folded


def fold_excite_residual(graph: _Graph) -> int:
    """x + x·s (s a squeeze-excite gate, one value per channel) becomes x·(s + 1): one pass
    over the feature map instead of two."""
    import numpy as np
    from onnx import helper

    folded = 0
    for mul in list(graph.nodes):
        if mul.op_type != "Mul" or len(mul.input) != 2:
            continue
        add = graph.only_consumer(mul.output[0], "Add")
        if add is None:
            continue
        x = graph.other_input(add, mul.output[0])
        if x is None or x not in mul.input:
            continue
        gate = graph.other_input(mul, x)
        producer = next((n for n in graph.nodes if gate in n.output), None)
        if gate is None or producer is None or producer.op_type != "HardSigmoid":
            continue  # the squeeze-excite gates; x·(s + 1) only saves work where s is small
        one = graph.add_constant("one", np.ones((), np.float32))
        plus_one = graph.name("gate_plus_one")
        graph.replace(mul, helper.make_node("Add", [gate, one], [plus_one], name=graph.name("gate")))
        graph.replace(add, helper.make_node("Mul", [x, plus_one], [add.output[0]],
                                            name=graph.name("excite")))
        folded += 1
    return folded


def fuse(model: Any) -> tuple[Any, dict[str, int]]:
    """The model rewritten (in place), and how many of each pattern were folded."""
    graph = _Graph(model)
    counts = {
        "conv scale+shift": fold_conv_scale_shift(graph),
        "hard-swish": fold_hard_swish(graph),
        "activation scale+shift": fold_activation_scale_shift(graph),
        "conv-transpose bias+norm": fold_transpose_bias_norm(graph),
        "excite residual": fold_excite_residual(graph),
    }
    return graph.write(), counts


def fused_detector(source: Path, cache: Path) -> Path | bytes:
    """The detector at `source` with its elementwise chains folded, cached in `cache` (its bytes
    when the cache cannot be written); `source` itself when the rewrite cannot be made or does
    not compute the same (logged). Either is what `onnxruntime.InferenceSession` takes."""
    target = _cache_file(source, cache)
    if target.is_file():
        return target
    try:
        import onnx

        model, counts = fuse(onnx.load(str(source)))
        onnx.checker.check_model(model)
        data = model.SerializeToString()
        difference = largest_difference(source.read_bytes(), data)
        if not difference <= TOLERANCE:
            log.warning("not using the rewritten text detector: its output differs by %.2g",
                        difference)
            return source
    except Exception as exc:  # noqa: BLE001 - an optimisation only: the original still works
        log.warning("could not rewrite the text detector %s (%s: %s); using it as it is",
                    source, type(exc).__name__, exc)
        return source
    log.debug("text detector rewritten: %s", counts)
    from capdex.atomic import atomic_write_bytes

    try:
        atomic_write_bytes(target, data, durable=False)
        for old in cache.glob(f"{target.name[:16]}-*.onnx"):
            if old != target:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.info("could not cache the rewritten text detector in %s: %s", cache, exc)
        return data
    return target


def largest_difference(original: bytes, rewritten: bytes) -> float:
    """The largest difference of the two detectors' probability maps on two lines of dark
    strokes (the detector marks them as text: a map with both certain and uncertain pixels)."""
    import numpy as np
    import onnxruntime as ort

    pattern = np.ones((96, 128), np.float32)
    for top in (16, 52):
        for left in range(8, 120, 9):
            pattern[top:top + 22, left:left + 3] = -1
            pattern[top:top + 3, left:left + 7] = -1
    pixels = np.ascontiguousarray(np.broadcast_to(pattern, (1, 3, 96, 128)))
    maps = []
    for model in (original, rewritten):
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        maps.append(session.run(None, {session.get_inputs()[0].name: pixels})[0])
    if not 0.0 < float((maps[0] > 0.3).mean()) < 0.5:
        raise ValueError("the original detector does not mark the check pattern as text")
    return float(np.abs(maps[0] - maps[1]).max())


def _cache_file(source: Path, cache: Path) -> Path:
    """`cache/<source>-<its size and time, the format>.onnx`: a new name whenever the source
    model changes, so a stale rewrite is never read."""
    where = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    stat = source.stat()
    what = hashlib.sha256(repr((FUSE_FORMAT, stat.st_size, stat.st_mtime_ns)).encode())
    return cache / f"{where}-{what.hexdigest()[:16]}.onnx"
