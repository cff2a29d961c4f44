"""The machine a benchmark ran on, for the results file."""

from __future__ import annotations

import os
import platform


def describe() -> str:
    model = platform.processor() or "unknown CPU"
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    if flags:  # what makes CPU inference fast or slow here (the model name may not say)
        model += (f" ({'AVX-512 BF16' if 'avx512_bf16' in flags else 'no AVX-512 BF16'}, "
                  f"{'AMX' if 'amx_tile' in flags else 'no AMX'})")
    try:
        load = " load {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())
    except OSError:
        load = ""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"machine: {model}, {cpus} CPUs,{load}"
