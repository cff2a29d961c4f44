"""Indexing on Apache Spark: list photos, run the index stages and embed on the executors,
write Parquet.

The result is merged into a store with `capdex import` (`indexer/importer.py`), so a cluster run
and local `capdex index` runs feed one collection. The driver only lists files; each executor's
Python worker creates the stages (`capdex.indexer.stages`: the captioner, OCR when on, ...) and
the embedder once (cached in this module) and processes its partitions in batches through
`mapInPandas`, as an index run does: each photo read once (hash and decode from the same
bytes), decoded once for every stage, each stage over the batch with bad-image isolation
(`capdex.indexer.isolate`). The caption has its own columns; other stages' results travel in
`stages` (JSON: {name: {"version", "result"}}) and `capdex import` writes them with the stage's
own `write`. The vector embeds `embedded_text` (`capdex.indexer.embed.embedding_text`: caption
and the text OCR read). A file that cannot be read, decoded or captioned becomes a row with an
`error`, never a failed job.

On a cluster (`spark://...`, YARN, Kubernetes) capdex's own packages travel with the job (a zip
given to `addPyFile`), so the executors run the driver's code. Their Python (`spark_python`) must
have the dependencies of the captioner and the embedder installed and the driver's Python
version; photos must be readable there under the paths the driver lists (shared storage). An
executor that cannot read a file makes an error row, as any unreadable file does. Models are
cached under `spark_executor_data_dir` on each executor.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from capdex.paths import to_fs
from capdex.settings import Settings
from capdex.indexer.scan import scan

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: Parquet columns, in order (Spark DDL). `vector` is the normalised float32 embedding.
SCHEMA = (
    "path string, size long, mtime_ns long, content_hash string, caption string, "
    "captioner string, captioner_version string, embedder string, dim int, vector array<float>, "
    "width int, height int, taken_at timestamp, camera_make string, camera_model string, "
    "lens string, gps_latitude double, gps_longitude double, error string, stages string, "
    "embedded_text string"
)
COLUMNS = [part.strip().split(" ", 1)[0] for part in SCHEMA.split(",")]


class SparkJobError(RuntimeError):
    """The Spark job could not run (pyspark missing, bad master URL, unwritable output)."""


@dataclass
class SparkSummary:
    """What one `spark-index` run produced."""

    files: int = 0
    captioned: int = 0
    failed: int = 0
    partitions: int = 0
    seconds: float = 0.0
    output: str = ""

    def line(self) -> str:
        return (f"{self.captioned} captioned, {self.failed} failed of {self.files} file(s) in "
                f"{self.partitions} partition(s), {self.seconds:.1f}s -> {self.output}")


def _pyspark() -> ModuleType:
    try:
        import pyarrow  # noqa: F401 - mapInPandas moves batches through Arrow
        import pyspark
    except ImportError as exc:
        raise SparkJobError(
            f"spark-index needs pyspark and pyarrow ({exc.name} is missing): "
            "pip install 'capdex[spark]'"
        ) from exc
    return pyspark


# -- executor side ---------------------------------------------------------------------------------
#: (stages, embedder) per settings, created once per Python worker process and reused by every
#: partition that worker runs (PySpark reuses its workers by default).
_MODELS: dict[str, tuple[Any, Any]] = {}


def _models(settings: Settings) -> tuple[Any, Any]:
    from capdex.embedder import get_embedder
    from capdex.indexer.stages import STAGES

    key = settings.model_dump_json()
    if key not in _MODELS:
        stages = [s for s in (cls.create(settings, {}) for cls in STAGES) if s is not None]
        _MODELS[key] = (stages, get_embedder(settings))
    return _MODELS[key]


def executor_settings(settings: Settings, data_dir: str | None) -> Settings:
    """The job's settings as an executor uses them: its own data dir (for models), by default
    a folder in its temp dir, as the driver's data dir may not exist (or be writable) there."""
    where = data_dir or os.path.join(tempfile.gettempdir(), "capdex-spark")
    return settings.model_copy(update={"data_dir": Path(where)})


def caption_frames(frames: Iterable[pd.DataFrame], settings: Settings,
                   data_dir: str | None = None) -> Iterator[pd.DataFrame]:
    """mapInPandas body: (path, size, mtime_ns) frames in, one output row per input row.

    `data_dir` is the executors' data dir (None: `executor_settings`' default)."""
    import pandas as pd

    settings = executor_settings(settings, data_dir)
    stages, embedder = _models(settings)
    required = next(s for s in stages if s.required)
    size = settings.batch_size or required.captioner.batch_size
    for frame in frames:
        records = frame.to_dict("records")
        rows: list[dict[str, Any]] = []
        for start in range(0, len(records), size):
            rows.extend(process_batch(records[start : start + size], settings, stages, embedder))
        out = pd.DataFrame(rows, columns=COLUMNS)
        # Keep integer columns integer even where failed rows left them empty.
        for column in ("width", "height", "dim"):
            out[column] = out[column].astype("Int32")
        yield out


def process_batch(records: list[dict[str, Any]], settings: Settings, stages: list[Any],
                  embedder: Any) -> list[dict[str, Any]]:
    """The index stages over one batch of listed files: one output row per record."""
    import json

    from capdex.images import ImageLoadError
    from capdex.indexer.decode import decode_for
    from capdex.indexer.embed import embedding_text
    from capdex.indexer.isolate import Failed, isolate
    from capdex.indexer.read import read_photo
    from capdex.indexer.stage import StageInput
    from capdex.indexer.stages.caption import caption_text

    rows: list[dict[str, Any]] = []
    ready: list[tuple[dict[str, Any], Any, Any]] = []  # (row, StageViews, bytes)
    for record in records:
        row = dict.fromkeys(COLUMNS)
        row.update(path=record["path"], size=int(record["size"]), mtime_ns=int(record["mtime_ns"]))
        rows.append(row)
        fs_path = to_fs(record["path"])
        try:
            read = read_photo(fs_path)  # one read: the hash and the decode see the same bytes
            row["content_hash"] = read.content_hash
            views = decode_for(fs_path, read.data, stages, max_pixels=settings.max_image_pixels)
        except ImageLoadError as exc:
            row["error"] = str(exc)
            continue
        except FileNotFoundError:
            # Listed by the driver, absent here: not on storage this executor sees.
            row["error"] = (f"not found on Spark executor host {socket.gethostname()} (photos must "
                            "be on storage every executor reads under the same path)")
            continue
        except OSError as exc:
            row["error"] = f"cannot read on {socket.gethostname()}: {exc.strerror or exc}"
            continue
        except Exception as exc:  # noqa: BLE001 - one strange file must never fail the job
            row["error"] = f"could not read image ({type(exc).__name__}: {exc})"
            continue
        assert views is not None  # the caption stage always needs pixels
        meta = views.metadata
        row.update(width=meta.width, height=meta.height, taken_at=meta.taken_at,
                   camera_make=meta.camera_make, camera_model=meta.camera_model, lens=meta.lens,
                   gps_latitude=meta.latitude, gps_longitude=meta.longitude)
        ready.append((row, views, read))
    results: dict[str, dict[int, Any]] = {}
    for stage in stages:
        todo = [(i, row, views, read) for i, (row, views, read) in enumerate(ready)
                if row["error"] is None and (stage.size is None or stage.name in views.views)]
        inputs = [StageInput(row["path"], None, views.views.get(stage.name), views.metadata,
                             partial(_larger, row["path"], read, settings=settings))
                  for _, row, views, read in todo]
        done = isolate(stage.run, inputs, describe=stage.describe_failure, fatal=stage.fatal)
        for (i, row, _, _), result in zip(todo, done, strict=True):
            if isinstance(result, Failed):
                if stage.required:
                    row["error"] = result.reason
                continue
            results.setdefault(stage.name, {})[i] = result
        for row, views, _ in ready:
            if stage.name in views.failed and stage.required and row["error"] is None:
                row["error"] = views.failed[stage.name]
    required = next(s for s in stages if s.required)
    captioned = [(i, row) for i, (row, _, _) in enumerate(ready)
                 if row["error"] is None and i in results.get(required.name, {})]
    texts = []
    for i, row in captioned:
        row.update(caption=caption_text(results[required.name][i]),
                   captioner=required.captioner.name,
                   captioner_version=required.version)
        others = {s.name: {"version": s.version, "result": results[s.name][i]}
                  for s in stages if not s.required and i in results.get(s.name, {})}
        row["stages"] = json.dumps(others) if others else None
        shown = results.get("ocr", {}).get(i, {}).get("text", "")
        row["embedded_text"] = embedding_text(row["caption"], shown, settings.ocr_embed_words)
        texts.append(row["embedded_text"])
    vectors = embedder.embed(texts)
    for (_, row), vector in zip(captioned, vectors, strict=True):
        row.update(embedder=embedder.name, dim=len(vector), vector=vector.tolist())
    return rows


def _larger(path: str, read: Any, hint: Any, settings: Settings) -> Any:
    from capdex.images import decode_image

    return decode_image(to_fs(path), max_pixels=settings.max_image_pixels, size_hint=hint,
                        data=read.data).image


# -- driver side -------------------------------------------------------------------------------------
#: capdex's packages the executors import (the job's functions are pickled by reference to them).
SHIPPED_PACKAGES = ("capdex",)
_code_dirs: list[tempfile.TemporaryDirectory[str]] = []  # kept (and removed) for the process


def is_local(master: str) -> bool:
    """Whether `master` runs the executors inside this process (local, local[N], local[*, F])."""
    return master == "local" or master.startswith("local[")


def code_zip() -> Path:
    """A zip of capdex's own packages for `addPyFile`, built once per process.

    Named by its content, so a session that already has this code does not get a second copy."""
    import hashlib
    import importlib.util

    files: list[tuple[str, Path]] = []
    for package in SHIPPED_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise SparkJobError(f"cannot find capdex's package {package!r} to ship to the executors")
        root = Path(next(iter(spec.submodule_search_locations)))
        files += [(f"{package}/{path.relative_to(root).as_posix()}", path)
                  for path in sorted(root.rglob("*"))
                  if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"]
    metadata = _builtin_entry_points()
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes())
    for name, text in metadata:
        digest.update(name.encode() + b"\0" + text.encode())
    if not _code_dirs:
        _code_dirs.append(tempfile.TemporaryDirectory(prefix="capdex-spark-code-"))
    target = Path(_code_dirs[0].name) / f"capdex-{digest.hexdigest()[:16]}.zip"
    if not target.exists():
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, path in files:
                archive.write(path, name)
            for name, text in metadata:
                archive.writestr(name, text)
    return target


def _builtin_entry_points() -> list[tuple[str, str]]:
    """A dist-info folder declaring capdex's own captioners, for the zip: the registry finds
    built-ins through entry points, and executors have the zip, not capdex's installed metadata."""
    from importlib.metadata import entry_points

    from capdex.captioners.registry import ENTRY_POINT_GROUP

    lines = [f"{ep.name} = {ep.value}\n" for ep in entry_points(group=ENTRY_POINT_GROUP)
             if ep.value.startswith("capdex.")]
    info = "capdex_shipped_captioners-0.dist-info"
    return [(f"{info}/METADATA", "Metadata-Version: 2.1\nName: capdex-shipped-captioners\n"
                                 "Version: 0\n"),
            (f"{info}/entry_points.txt", f"[{ENTRY_POINT_GROUP}]\n" + "".join(lines))]


def spark_conf(settings: Settings, master: str, extra: Iterable[str] = ()) -> dict[str, str]:
    """The Spark configuration of a capdex job on `master`; `extra` are "key=value" strings."""
    conf = {"spark.sql.execution.arrow.pyspark.enabled": "true", "spark.ui.enabled": "false"}
    python = settings.spark_python or (sys.executable if is_local(master) else None)
    if python:
        conf["spark.pyspark.python"] = python
    if is_local(master):
        # Executors are threads of this machine: their Python workers see this interpreter's
        # import path too (editable installs, PYTHONPATH), whatever `python3` is first on PATH.
        conf["spark.executorEnv.PYTHONPATH"] = os.pathsep.join(
            [p for p in sys.path if p and os.path.isdir(p)])
    if settings.spark_executor_memory:
        conf["spark.executor.memory"] = settings.spark_executor_memory
    if settings.spark_executor_cores:
        conf["spark.executor.cores"] = str(settings.spark_executor_cores)
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SparkJobError(f"--conf {item!r}: expected key=value, e.g. spark.executor.memory=2g")
        conf[key.strip()] = value
    return conf


def check_master(master: str, timeout: float = 5.0) -> None:
    """Refuse a standalone master URL none of whose hosts answers, at once: Spark itself retries
    for a minute and then reports only a stopped SparkContext."""
    if not master.startswith("spark://"):
        return  # local needs no network; yarn, k8s:// etc. are checked by Spark
    problems = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
            return
        except (OSError, ValueError) as exc:
            problems.append(f"{address}: {getattr(exc, 'strerror', None) or exc}")
    raise SparkJobError(f"cannot reach the Spark master {master} ({'; '.join(problems)})")


def spark_session(master: str | None, settings: Settings | None = None, *,
                  app_name: str = "capdex-index", conf: Iterable[str] = ()) -> SparkSession:
    """A SparkSession for `master` (default: settings.spark_master, else local[*]) that runs
    capdex's code on its executors."""
    _pyspark()
    from pyspark.sql import SparkSession

    settings = settings or Settings()
    master = master or settings.spark_master or "local[*]"
    values = spark_conf(settings, master, conf)
    check_master(master)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in values.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # e.g. no Java, a master that refuses the app
        raise SparkJobError(f"cannot start Spark with master {master!r}: "
                            f"{job_failure(str(exc))}") from exc
    context = session.sparkContext
    if "spark.pyspark.python" in values:
        # PySpark takes the workers' Python from the driver's PYSPARK_PYTHON when it builds
        # each function, not from the configuration: say it here, for this session only.
        context.pythonExec = values["spark.pyspark.python"]
    context.addPyFile(str(code_zip()))
    return session


def run_spark_index(roots: Iterable[str | Path], output: str | Path, settings: Settings, *,
                    master: str | None = None, spark: Any = None, partitions: int | None = None,
                    conf: Iterable[str] = ()) -> SparkSummary:
    """List photos under `roots`, caption and embed them on Spark, and write Parquet to `output`.

    Pass `spark` to reuse a running session (tests); otherwise one is started for `master` (with
    the extra "key=value" `conf`) and stopped at the end. Files the scan could not read are
    error rows too.
    """
    started = time.monotonic()
    roots = [os.path.abspath(os.fspath(r)) for r in roots]
    output = os.fspath(output)
    if "://" not in output:  # a local path means the same on the executors: make it absolute
        output = os.path.abspath(output)
    for root in roots:
        if not os.path.exists(root):
            raise SparkJobError(f"{root}: no such file or folder")
    found = scan(roots, exclude=[settings.data_dir], follow_links_out=settings.follow_symlinks_out)
    own_session = spark is None
    session = spark or spark_session(master, settings, conf=conf)
    try:
        summary = _run(session, found, output, settings, partitions)
    finally:
        if own_session:
            session.stop()
    summary.seconds = time.monotonic() - started
    return summary


def _run(spark: Any, found: Any, output: str | Path, settings: Settings,
         partitions: int | None) -> SparkSummary:
    from pyspark.sql import functions as F

    files = [(f.path, f.size, f.mtime_ns) for f in found.files]
    size = settings.batch_size or 8
    # Enough partitions to keep every core busy, each a few batches long.
    count = partitions or max(1, min(spark.sparkContext.defaultParallelism * 4,
                                     -(-len(files) // size)))
    master = spark.sparkContext.master
    data_dir = settings.spark_executor_data_dir or (settings.data_dir if is_local(master) else None)
    executor_dir = str(data_dir) if data_dir is not None else None
    listed = spark.createDataFrame(files, "path string, size long, mtime_ns long")
    captioned = listed.repartition(count).mapInPandas(
        lambda frames: caption_frames(frames, settings, executor_dir), schema=SCHEMA)
    problems = [(p.path, p.size, p.mtime_ns, p.reason) for p in found.problems]
    if problems:
        failed = spark.createDataFrame(problems, "path string, size long, mtime_ns long, error string")
        captioned = captioned.unionByName(failed, allowMissingColumns=True)
    try:
        captioned.write.mode("overwrite").parquet(str(output))
    except Exception as exc:  # Py4J wraps everything; find the cause
        raise SparkJobError(f"the Spark job failed: {job_failure(str(exc))}") from exc
    written = spark.read.parquet(str(output))
    stats = written.agg(F.count(F.lit(1)).alias("n"),
                        F.sum(F.col("error").isNotNull().cast("int")).alias("failed")).first()
    total, failed = int(stats["n"]), int(stats["failed"] or 0)
    return SparkSummary(files=total, captioned=total - failed, failed=failed, partitions=count,
                        output=str(output))


#: The line that says why a task failed, inside Py4J's wrapping (Python traceback, JVM error).
_CAUSE = re.compile(
    r"^\s*(?:Caused by: )?((?:[\w.$]+(?:Error|Exception|Unavailable)): .+|.*Cannot run program .+)$")


def job_failure(text: str) -> str:
    """Why a Spark job failed, in one line, from Py4J's many-line message; with a hint when the
    executors' Python lacks something (CAPDEX_SPARK_PYTHON, the model extras)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [m.group(1) for m in map(_CAUSE.match, lines) if m and "Py4JJavaError" not in m.group(1)]
    causes = [c[c.index("Cannot run program"):] if "Cannot run program" in c else c for c in causes]
    # Python tracebacks end with the exception raised in the worker: the last one is the cause.
    python = [c for c in causes
              if not c.startswith(("java.", "javax.", "org.", "scala.", "io.", "com.", "py4j."))]
    reason = (python or causes or lines or ["unknown error"])[-1 if python else 0]
    if "ModuleNotFoundError" in reason or "Cannot run program" in reason:
        reason += (" (the executors' Python must be the driver's Python version with capdex's "
                   "dependencies: set CAPDEX_SPARK_PYTHON, pip install 'capdex[spark]' and the "
                   "captioner's extra there)")
    return reason
