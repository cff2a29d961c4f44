"""`capdex search "a cat"` as a user runs it: a fresh process each time, start-up included.

Run by hand: `PYTHONPATH=. python benchmarks/search_startup.py [N_PHOTOS=1000] [REPEATS=5]`.
Builds a library of N photos with caption-like captions and real MiniLM vectors, then runs
`python -m capdex.api.cli search "a cat"` REPEATS times per embedder runtime and reports the
median and spread of the wall time and the peak RSS of each process. The baseline (1.00) is
the same command on sentence-transformers (`CAPDEX_EMBEDDER_BACKEND=torch`, the path every
search took before); the new default runs the exported ONNX model on ONNX Runtime. The one-time
ONNX export (the first search on a machine: the children get an empty user cache) is timed on
its own.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe

QUERY = "a cat"


def run_search(data_dir: Path, **env: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `capdex search` process."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("CAPDEX_")}
    child_env.update(CAPDEX_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1",
                     XDG_CACHE_HOME=str(data_dir.parent / "cache"), **env)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "capdex.api.cli", "search", QUERY],
                                env=child_env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it: its own rusage, not the children's
        wall = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code != 0 or not out.read().strip():
            raise SystemExit(f"capdex search failed ({code}): {err.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def build(data_dir: Path, n: int) -> None:
    """Run in its own process: a forked child's peak RSS counts its parent's pages, so the
    process timing the searches must stay small (no torch, no model)."""
    from capdex.embedder import Embedder
    from capdex.search.engine import SearchEngine
    from capdex.settings import Settings
    from capdex.store.db import Database

    settings = Settings(data_dir=data_dir)
    db = Database(settings.db_url)
    import numpy as np
    from keyword_search import fill
    from search_latency import add_vectors

    fill(db, n, np.random.default_rng(0))
    embedder = Embedder("all-MiniLM-L6-v2", cache_dir=data_dir / "warm-up-export")
    add_vectors(db, embedder)
    SearchEngine(settings, db, embedder).search(QUERY)  # writes the vector index file


def main(n: int, repeats: int) -> None:
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        subprocess.run([sys.executable, __file__, "--build", str(data_dir), str(n)], check=True)
        print(f"{n} photos; `capdex search {QUERY!r}` in a fresh process, {repeats} runs each")
        first, first_rss = run_search(data_dir)
        print(f"first search on a machine (ONNX export included): {first:.2f} s, "
              f"{first_rss:.0f} MB")
        rows = {}
        for label, env in (("sentence-transformers (torch), before", {"CAPDEX_EMBEDDER_BACKEND":
                                                                      "torch"}),
                           ("ONNX Runtime, now", {})):
            runs = [run_search(data_dir, **env) for _ in range(repeats)]
            rows[label] = ([w for w, _ in runs], [r for _, r in runs])
        base = statistics.median(next(iter(rows.values()))[0])
        for label, (walls, rss) in rows.items():
            wall = statistics.median(walls)
            print(f"{label:>40}: {wall:5.2f} s (min {min(walls):.2f}, max {max(walls):.2f}; "
                  f"ratio {wall / base:.2f}), peak RSS {statistics.median(rss):.0f} MB")


if __name__ == "__main__" and sys.argv[1:2] == ["--build"]:
    build(Path(sys.argv[2]), int(sys.argv[3]))
elif __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
         int(sys.argv[2]) if len(sys.argv) > 2 else 5)
