"""`capdex spark-index` against a real Spark standalone cluster (master + worker on loopback,
`spark_cluster` in tests/conftest.py) on the real sample photos with the default tagger, then
`capdex import` and `capdex search`. The local[N] path is covered by test_spark_job.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capdex.api.cli import app
from capdex.samples import SAMPLES, write_samples
from tests.spark_cluster import SparkCluster

pytestmark = pytest.mark.slow


def test_spark_index_on_a_cluster_then_import_and_search(spark_cluster: SparkCluster,
                                                         tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_samples(photos)
    (photos / "broken.jpg").write_bytes(b"this is not a jpeg")
    output, driver_data, executor_data = (tmp_path / "run.parquet", tmp_path / "driver-data",
                                          tmp_path / "executor-data")
    runner = CliRunner()
    # The executors' Python is this venv's (as a cluster's would be the one capdex is installed
    # in); they cache models in their own data dir.
    env = {"CAPDEX_SPARK_PYTHON": sys.executable,
           "CAPDEX_SPARK_EXECUTOR_DATA_DIR": str(executor_data),
           "CAPDEX_SPARK_EXECUTOR_MEMORY": "1g"}
    result = runner.invoke(app, ["spark-index", str(photos), "--output", str(output),
                                 "--master", spark_cluster.url, "--data-dir", str(driver_data),
                                 "--conf", "spark.task.maxFailures=1", "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["files"], summary["failed"]) == (len(SAMPLES) + 1, 1)

    # The work ran in an executor the worker launched: the master lists the finished
    # application, the worker's work dir holds that executor's log of Python tasks and the
    # code shipped to it, and only the executors' data dir has the tagger's weights cache.
    apps = [a for a in spark_cluster.master_state()["completedapps"] if a["name"] == "capdex-index"]
    assert apps and apps[-1]["state"] == "FINISHED" and apps[-1]["memoryperexecutor"] == 1024
    executor_dirs = list((spark_cluster.work_dir / apps[-1]["id"]).iterdir())
    assert executor_dirs
    logs = "".join((d / "stderr").read_text(errors="replace") for d in executor_dirs)
    assert "Starting Python task execution" in logs
    assert any(d.glob("capdex-*.zip") for d in executor_dirs)
    assert list((executor_data / "models" / "tagger").glob("*.safetensors"))
    assert not (driver_data / "models").exists()

    store = tmp_path / "store"
    imported = runner.invoke(app, ["import", str(output), "--data-dir", str(store)])
    assert imported.exit_code == 0, imported.output
    assert f"{len(SAMPLES)} new" in imported.output and "1 failed" in imported.output
    found = runner.invoke(app, ["search", "cat", "--data-dir", str(store), "--json", "-k", "3"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)["results"]
    assert hits[0]["path"] == str(photos / "chelsea-the-cat.png")
    errors = runner.invoke(app, ["errors", "--data-dir", str(store)])
    assert "broken.jpg" in errors.output
