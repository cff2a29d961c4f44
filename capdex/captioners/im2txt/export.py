"""`capdex models export im2txt`: write the encoder and one decoder step as ONNX graphs.

The graphs go into the model folder's `onnx/` (next to `models/` and `data/`), so `im2txt-onnx`
finds them with the same vocabulary. The decoding loop is not exported: it runs in numpy for
both runtimes, which is what makes their tokens identical.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from capdex.captioners import catalog
from capdex.captioners.base import CaptionerError
from capdex.captioners.lifecycle import require

if TYPE_CHECKING:
    from capdex.captioners.im2txt.captioner import TorchRuntime

OPSET = 18


def export_onnx(folder: Path, *, check: bool = True) -> list[Path]:
    """Export the im2txt model in `folder` to `folder/onnx/`; returns the files written.

    With `check`, both graphs are run once through ONNX Runtime and compared with PyTorch.
    """
    torch = require("torch", "im2txt")
    require("onnx", "onnx")
    require("onnxscript", "onnx")
    from capdex.captioners.im2txt.captioner import TorchRuntime

    missing = catalog.missing_files("im2txt", folder)
    if missing:
        raise CaptionerError(
            f"cannot export: {folder} has no {', '.join(missing)}. "
            f"Install im2txt first ({catalog.install_hint('im2txt')})."
        )
    runtime = TorchRuntime(folder)
    out = folder / "onnx"
    out.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=1024)
    images = torch.zeros(2, 3, 224, 224)
    n = 3  # a different example batch for the step, so no size is mistaken for a constant
    step_args = (
        torch.tensor([-1, 4, 5], dtype=torch.int64),
        torch.zeros(n, runtime.embed),
        torch.zeros(runtime.layers, n, runtime.hidden),
        torch.zeros(runtime.layers, n, runtime.hidden),
    )
    written = [out / "encoder.onnx", out / "decoder_step.onnx"]
    # The exporter reports every graph rewrite at INFO/WARNING; only failures matter here.
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "torch.export")]
    levels = [logger.level for logger in quiet]
    try:
        for logger in quiet:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                runtime.encoder,
                (images,),
                str(written[0]),
                input_names=["images"],
                output_names=["features"],
                dynamic_shapes={"images": {0: batch}},
                opset_version=OPSET,
                external_data=False,
                dynamo=True,
                verbose=False,
            )
            torch.onnx.export(
                runtime.decoder_step,
                step_args,
                str(written[1]),
                input_names=["tokens", "features", "h", "c"],
                output_names=["logprobs", "h_out", "c_out"],
                dynamic_shapes={
                    "tokens": {0: batch},
                    "features": {0: batch},
                    "h": {1: batch},
                    "c": {1: batch},
                },
                opset_version=OPSET,
                external_data=False,
                dynamo=True,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many kinds of errors
        raise CaptionerError(f"ONNX export of im2txt failed: {exc}") from exc
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    if check:
        try:
            _check(folder, runtime)
        except CaptionerError:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    (out / "export.json").write_text(
        json.dumps(
            {
                "source": catalog.fingerprint("im2txt", folder),
                "opset": OPSET,
                "torch": torch.__version__,
            },
            indent=2,
        )
        + "\n"
    )
    return written


def _check(folder: Path, runtime: TorchRuntime) -> None:
    """Run a random batch through both runtimes; refuse an export that disagrees."""
    from capdex.captioners.im2txt.captioner import OnnxRuntime

    onnx_runtime = OnnxRuntime(folder)
    pixels = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    expected, expected_state = runtime.start(pixels)
    got, got_state = onnx_runtime.start(pixels)
    tokens = np.array([1, 2], dtype=np.int64)
    expected_next, _ = runtime.step(tokens, expected_state)
    got_next, _ = onnx_runtime.step(tokens, got_state)
    for a, b in ((expected, got), (expected_next, got_next)):
        if not np.allclose(a, b, atol=1e-3, rtol=1e-3):
            raise CaptionerError(
                f"the ONNX export disagrees with PyTorch (max difference "
                f"{float(np.abs(a - b).max()):.2e}); not using it"
            )
