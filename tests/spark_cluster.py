"""A real Spark standalone cluster on loopback (one master, one worker), from the pyspark package.

Started with pyspark's bundled `bin/spark-class` as two JVM processes, so jobs submitted to its
`spark://` URL run in executors the worker launches, not in the driver. Tests use it through the
session-scoped `spark_cluster` fixture (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class ClusterUnavailable(RuntimeError):
    """pyspark or Java is missing, so no cluster can be started here."""


@dataclass
class SparkCluster:
    """A running master + worker; `url` is what `--master` takes."""

    home: Path
    root: Path
    master_port: int
    master_ui_port: int
    worker_ui_port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    @property
    def work_dir(self) -> Path:
        """Where the worker runs executors: <app id>/<executor id>/{stdout,stderr}."""
        return self.root / "work"

    def master_state(self) -> dict:
        """The master's JSON status page (workers, running and completed applications)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.master_ui_port}/json/", timeout=5) as r:
            return json.load(r)

    def logs(self) -> str:
        """The tail of the master's and worker's logs, for failure messages."""
        parts = []
        for name in ("master.log", "worker.log"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-40:]))
        return "\n".join(parts)

    def stop(self) -> None:
        for process in reversed(self.processes):  # the worker first, then the master
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spark_home() -> Path:
    """The Spark distribution inside the pyspark package (jars, bin/spark-class)."""
    try:
        import pyspark
    except ImportError as exc:
        raise ClusterUnavailable("pyspark is not installed (pip install 'capdex[spark]')") from exc
    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-class").exists() or not (home / "jars").is_dir():
        raise ClusterUnavailable(f"{home} has no bin/spark-class or jars/")
    return home


def start_cluster(root: Path, *, cores: int = 2, memory: str = "2g",
                  timeout: float = 90.0) -> SparkCluster:
    """Start a master and one worker (`cores`, `memory`) under `root`; wait until it registers."""
    home = spark_home()
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ClusterUnavailable("no Java (Spark needs Java 17+)")
    (root / "conf").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1",
               SPARK_CONF_DIR=str(root / "conf"), SPARK_LOG_DIR=str(root / "logs"),
               SPARK_WORKER_DIR=str(root / "work"))
    cluster = SparkCluster(home, root, _free_port(), _free_port(), _free_port())
    spark_class = str(home / "bin" / "spark-class")
    commands = {
        "master": [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                   "--port", str(cluster.master_port), "--webui-port", str(cluster.master_ui_port)],
        "worker": [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                   "--webui-port", str(cluster.worker_ui_port), "--cores", str(cores),
                   "--memory", memory, "--work-dir", str(cluster.work_dir), cluster.url],
    }
    try:
        for name, command in commands.items():
            with open(root / f"{name}.log", "wb") as log:
                cluster.processes.append(subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root))
            if name == "master":
                _wait(cluster, lambda state: state.get("status") == "ALIVE", timeout)
        _wait(cluster, lambda state: any(w.get("state") == "ALIVE" for w in state.get("workers", [])),
              timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait(cluster: SparkCluster, ready, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in cluster.processes):
            raise RuntimeError(f"a Spark process exited early:\n{cluster.logs()}")
        try:
            if ready(cluster.master_state()):
                return
        except (OSError, ValueError):
            pass  # the web UI is not listening yet, or not yet serving its JSON
        time.sleep(0.5)
    raise RuntimeError(f"the Spark cluster was not ready within {timeout:.0f}s:\n{cluster.logs()}")
