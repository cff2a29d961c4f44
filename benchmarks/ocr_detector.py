"""Benchmark 17d (issue 17): the PP-OCR text detector as RapidOCR ships it against its rewritten
graph (capdex/captioners/ocr_graph.py), on the views the OCR gate gives it, in one run.

The inputs are the sharp regions of real photographs at the detector's scale (the Debian
wallpapers at 12 MP, as benchmarks/ocr_pipeline.py makes them): what the detector sees on
photos full of detail, where it is nearly all of OCR's cost. Both models run in the session the
engine now uses (2 threads that sleep when idle, buffer arena on), alternating photo by photo;
wall and CPU time per photo, and the largest difference of their maps.

    PYTHONPATH=. python benchmarks/ocr_detector.py [REPEATS=3]

~1 minute on 2 quiet cores. Appends its lines to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import resource
import sys
import time

from benchmarks.ocr_pipeline import real_photos
from benchmarks.results import record
from benchmarks.tagger_throughput import WORK


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(repeats: int) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort

    from capdex.captioners.ocr import (
        DETECT_SIDE,
        _detector_input,
        _detector_model,
        _fit,
        _rgb_array,
        detector_session_options,
        sharp_region,
    )
    from capdex.captioners.ocr_graph import fuse
    from capdex.images import decode_image

    real = real_photos(WORK / "photos12mp-real")
    if real is None:
        sys.exit("needs the wallpapers: apt-get install lomiri-wallpapers mate-backgrounds")
    inputs = []
    for path in sorted(real.glob("*_0.jpg")):
        view = _fit(decode_image(path, max_pixels=200_000_000, size_hint=(1, DETECT_SIDE)).image,
                    DETECT_SIDE)
        array = _rgb_array(view)
        region = sharp_region(array)
        if region is not None:
            inputs.append(_detector_input(array[region]))
    options = detector_session_options()
    source = _detector_model()
    fused, counts = fuse(onnx.load(str(source)))
    sessions = {"as shipped": ort.InferenceSession(str(source), options,
                                                   providers=["CPUExecutionProvider"]),
                "rewritten": ort.InferenceSession(fused.SerializeToString(), options,
                                                  providers=["CPUExecutionProvider"])}
    for session in sessions.values():  # first runs allocate and tune
        session.run(None, {"x": inputs[0]})
    wall = dict.fromkeys(sessions, 0.0)
    cpu = dict.fromkeys(sessions, 0.0)
    largest = 0.0
    for _ in range(repeats):
        for pixels in inputs:
            maps = []
            for name, session in sessions.items():
                started, used = time.perf_counter(), _cpu()
                maps.append(session.run(None, {"x": pixels})[0])
                wall[name] += time.perf_counter() - started
                cpu[name] += _cpu() - used
            largest = max(largest, float(np.abs(maps[0] - maps[1]).max()))
    runs = repeats * len(inputs)
    pixels = sum(x.shape[2] * x.shape[3] for x in inputs) / len(inputs)
    old, new = "as shipped", "rewritten"
    lines = [
        f"{len(inputs)} sharp regions of real photographs at {DETECT_SIDE} px ({pixels / 1e3:.0f}k "
        f"pixels on average), {repeats} passes: detector as shipped {wall[old] / runs * 1000:.0f} "
        f"ms ({cpu[old] / runs * 1000:.0f} ms CPU) a photo, rewritten {wall[new] / runs * 1000:.0f}"
        f" ms ({cpu[new] / runs * 1000:.0f} ms CPU): **{wall[old] / wall[new]:.2f}x** faster, "
        f"**{cpu[old] / cpu[new]:.2f}x** less CPU",
        f"largest difference of the probability maps: {largest:.1e}; folded: {counts}",
    ]
    for line in lines:
        print(line)
    record("Benchmark 17d: OCR detector, as shipped vs rewritten graph (ocr_detector.py)", lines)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
